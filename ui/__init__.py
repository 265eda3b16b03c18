"""The Gradio UI. It only calls the `rag` library and renders its values."""
