"""The search side: ``store`` (the Chroma collection, the manifest of documents, and the keyword index kept in
step with them; the only module that knows Chroma), ``bm25`` (the keyword index behind the ``KeywordIndex``
protocol), and ``retrieval`` (vector and keyword hits fused, plus the relevance signal refusals are decided on).
"""
