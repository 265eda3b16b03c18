"""Serve the web app: ``python app.py [--config PATH] [--port N]``.

Binds 127.0.0.1:7860 unless configured (app.host / app.port). Set RAG_APP_USER and RAG_APP_PASSWORD to require
a login. The same port serves the HTTP API (/api, OpenAI-compatible /v1, docs at /docs; rag/http/), which needs
RAG_API_TOKEN when app.host is not a loopback address. The UI itself lives in ui/; this file only loads the
config, builds the one Rag object and serves it.
"""

import argparse
import sys

from rag import RagError, offline_defaults
from rag.cli.main import setup_logging


def main() -> int:
    parser = argparse.ArgumentParser(description="Chat with your PDFs in the browser.")
    parser.add_argument("--config", metavar="PATH", help="config file (default: config.yaml of the project)")
    parser.add_argument("--port", type=int, help="override app.port")
    args = parser.parse_args()
    offline_defaults()
    setup_logging(debug=False)

    from rag import Rag
    from ui.app import serve

    try:
        rag = Rag.from_config(args.config)  # one store client and one set of models for the whole process
        serve(rag, port=args.port)
    except RagError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  fix: {exc.hint}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
