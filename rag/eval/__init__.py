"""Evaluation on QA sets (``python -m rag eval``): ``retrieval`` measures page and document recall, MRR,
refusal rates and latency; ``answers`` (``--answers``) asks every question and checks the answers' key values,
cited pages and refusals. The plain-LangChain baseline it is compared with lives in bench/baseline.py."""
