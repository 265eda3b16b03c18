"""Serve the web app: ``python app.py [--config PATH]`` (binds 127.0.0.1:7860 unless configured)."""

import argparse

from rag.cli import setup_environment, setup_logging


def main() -> None:
    parser = argparse.ArgumentParser(description="Chat with your PDFs in the browser.")
    parser.add_argument("--config", metavar="PATH")
    parser.add_argument("--port", type=int, help="override app.port")
    args = parser.parse_args()
    setup_environment()
    setup_logging(debug=False)

    from rag.config import load_config
    from rag.runtime import Rag
    from ui.app import build

    settings = load_config(args.config)
    rag = Rag(settings)
    build(rag).queue().launch(server_name=settings.app.host, server_port=args.port or settings.app.port)


if __name__ == "__main__":
    main()
