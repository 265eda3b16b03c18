"""Evaluation on QA sets (``python -m rag eval``): ``retrieval`` measures page and document recall, MRR,
refusal rates and latency. The plain-LangChain baseline it is compared with lives in bench/baseline.py."""
