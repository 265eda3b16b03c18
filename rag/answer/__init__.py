"""The answer flow: a question to a cited answer.

``answerer.Answerer`` rewrites a follow-up (``followups``), retrieves, decides whether to refuse before calling
the model (``Answerer.refusal``), prompts (``prompts``), streams the model's text (or a cached one: ``cache``)
and turns it into claims with checked citations (``grounding``; ``Answerer.checked`` decides the refusals that
come after the model). ``previews`` renders a cited page with the passage marked.
"""
