"""Chat with your PDFs: ingestion, retrieval and grounded answers with page citations. No UI code here."""

__version__ = "0.1.0"
