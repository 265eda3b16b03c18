"""The ingest flow: a file's bytes to chunks in the store.

``pipeline.Ingestor`` plans (each file read once, hashed, unchanged files skipped), hands the rest to the parse
pool (``workers``: processes for several files or a long PDF), and writes each parsed file: embeddings, then
the store. Parsing is ``loaders.load_file`` (by suffix: ``pdf``, ``plaintext``, ``word``; ``ocr`` for pages
without a text layer; ``tables`` for PDF tables) and ``splitting`` (page-aware chunks: a chunk's page number is
its page's). ``uploads`` keeps the app's uploaded copies; ``watch`` keeps the store in step with a folder.
"""
