"""Keep answers tied to their passages: repair [n] citations, drop claims no passage supports, quote instead.

Small models answer correctly but forget to cite, cite the wrong number, or invent figures. The model's text is
parsed once, here, into ``Claim`` values (a sentence and the source numbers it cites); from then on citations
are data. Each answer sentence is compared with each passage by term containment (``rag.text.terms``: the
share of the sentence's terms found in the passage, lower-cased words for Latin script, character bigrams for
Hangul, whose particles stay glued to their nouns):

- a citation to a passage that does not support its sentence moves to the passage that clearly does;
  an uncited sentence clearly taken from a passage gets that citation; numbers naming no passage are dropped;
- in strict mode, a sentence is kept only if the passage it cites supports it and every number in it appears
  in that passage or the question; when nothing survives, the answer becomes a quote of the passage sentences
  that best match the question, with their citations;
- a bare figure that answers a "how much?" ("184.6 million pounds [1]") is shown as the sentence of its passage
  that holds it, which says what the figure counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from rag.text import numbers, terms
from rag.types import Claim, Source

# (question, sentences) -> similarity of each sentence to the question, e.g. cosine of embeddings.
Similarity = Callable[[str, Sequence[str]], Sequence[float]]

CITATION = re.compile(r"\s*\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")  # [1] or [1, 2], with the space before it
_SENTENCE_END = re.compile(r"(?<=[.!?。])[ \t]+")
_ABBREVIATION = re.compile(r"\b(?:Dr|Mr|Ms|Mrs|St|No|Co|vs|Ltd|Inc|Corp|Jr|Sr|etc|[A-Z])\.$")
_WORD = re.compile(r"\w+")
_META = re.compile(r"\bpassages?\b|\bthe (document|text|context)s? (says?|states?|mentions?|provides?)\b|"
                   r"\bas (stated|mentioned) in\b|\bthe answer is\b", re.I)
# A question whose answer is a figure: asked as such ("how much"), or asking for a quantity ("what was the revenue")
_ASKS_FIGURE = re.compile(r"\b(when|how (much|many|long|old|large|big)|what (year|date|percentage|amount|share)|"
                          r"which year|what (is|was|are|were) (the )?([\w'.&-]+ ){0,5}(revenues?|sales|profits?|"
                          r"income|earnings|costs?|prices?|total|ratios?|rates?|margins?|capacity|number of))\b|"
                          r"얼마|몇|언제|규모|금액|비율|연도", re.I)

SUPPORTED = 0.6  # share of a sentence's terms found in a passage for it to count as that passage's content
WEAK = 0.3  # below this, a cited passage does not support the sentence
QUOTE_PREFIX = {"en": "The documents say: ", "ko": "문서 내용: "}


def cited_numbers(text: str) -> list[int]:
    """The ``[n]`` marks of a model's raw text, in order of first appearance."""
    seen: dict[int, None] = {}
    for match in CITATION.finditer(text):
        for part in match.group(1).split(","):
            seen.setdefault(int(part), None)
    return list(seen)


def support(sentence: str, passage_terms: set[str]) -> float:
    found = terms(CITATION.sub(" ", sentence))
    return len(found & passage_terms) / len(found) if found else 0.0


def sentences(text: str) -> list[str]:
    """Lines split at sentence ends, not after abbreviations such as "Dr." or "Ltd."."""
    out: list[str] = []
    for line in text.split("\n"):
        pieces = [p.strip() for p in _SENTENCE_END.split(line) if p.strip()]
        merged: list[str] = []
        for piece in pieces:
            if merged and _ABBREVIATION.search(merged[-1]):
                merged[-1] = f"{merged[-1]} {piece}"
            else:
                merged.append(piece)
        out.extend(merged)
    return out


def _unwrap(text: str) -> str:
    """Join PDF layout line breaks, so that a sentence wrapped over two lines is one sentence again.
    A short line without end punctuation is taken for a heading and kept apart."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    out: list[str] = []
    for line in lines:
        prev = out[-1] if out else ""
        if prev and not re.search(r"[.!?。:]$", prev) and (len(prev) >= 40 or prev.endswith(",")):
            out[-1] = f"{prev} {line}"
        else:
            out.append(line)
    return "\n".join(out)


class Grounder:
    def __init__(self, question: str, sources: list[Source], similarity: Similarity | None = None) -> None:
        self.question = question
        self.sources = sources
        self._similarity = similarity
        self._question_terms = terms(question)
        self._asks_figure = bool(_ASKS_FIGURE.search(question))
        self._question_numbers = numbers(question)
        self._terms = {s.n: terms(s.hit.text) for s in sources}
        self._numbers = {s.n: numbers(s.hit.text) | self._question_numbers for s in sources}

    def check(self, text: str, *, strict: bool) -> tuple[Claim, ...]:
        """The model's ``text`` as claims with repaired citations; in strict mode only supported sentences."""
        kept: list[Claim] = []
        seen: set[str] = set()
        for sentence in sentences(text):
            claim, supported = self._fix(sentence)
            key = claim.text.strip().lower()
            if not key or key in seen:  # tiny models loop: drop repeated sentences
                continue
            seen.add(key)
            if strict and not supported:
                continue
            kept.append(claim)
        if _is_list([c.text for c in kept]):
            kept = [Claim(c.text, c.citations, new_line=True) for c in kept]
        return tuple(kept)

    def quote(self, lang: str, limit: int = 2) -> tuple[Claim, ...]:
        """The passage sentences that best match the question, quoted with their citations."""
        question = self._question_terms
        candidates = [(rank, source.n, sentence) for rank, source in enumerate(self.sources)
                      for sentence in sentences(_unwrap(source.hit.text)) if len(_WORD.findall(sentence)) >= 3]
        if not candidates:
            return ()
        semantic = list(self._similarity(self.question, [c[2] for c in candidates])) if self._similarity else None
        # A question term found in few of the sentences says more than one found in most ("revenue" against
        # "aurora" in a report about Aurora): terms are weighted by their inverse frequency among the sentences.
        sentence_terms = [terms(c[2]) for c in candidates]
        weight = {t: math.log(1 + len(candidates) / df) for t in question
                  if (df := sum(t in st for st in sentence_terms))}
        total = sum(weight.values()) or 1.0
        scored: list[tuple[float, int, str]] = []
        for i, (rank, n, sentence) in enumerate(candidates):
            score = sum(weight.get(t, 0.0) for t in sentence_terms[i] & question) / total
            if semantic is not None:
                score = 0.5 * score + 0.5 * float(semantic[i])
            if self._asks_figure and numbers(sentence):
                score += 0.1
            scored.append((score - 0.02 * rank, n, sentence))
        ranked = sorted(scored, key=lambda item: -item[0])
        if ranked[0][0] <= 0:
            return ()
        best = [item for item in ranked[:limit] if item[0] >= 0.8 * ranked[0][0]]
        return tuple(Claim(f"{QUOTE_PREFIX[lang] if i == 0 else ''}\u201c{s}\u201d", (n,))
                     for i, (_, n, s) in enumerate(best))

    def _fix(self, sentence: str) -> tuple[Claim, bool]:
        content = CITATION.sub("", sentence).strip()
        if not self._terms:
            return Claim(content), False
        scores = {n: support(content, t) for n, t in self._terms.items()}
        best = max(scores, key=lambda n: scores[n])
        cited = [n for n in cited_numbers(sentence) if n in self._terms]
        if cited and all(scores[n] < WEAK for n in cited) and scores[best] >= SUPPORTED:
            cited = [best]
        if not cited and scores[best] >= SUPPORTED:
            cited = [best]
        figures = numbers(content)
        sentence_terms = terms(content)
        says_more = len(sentence_terms) >= 5 and len(sentence_terms - self._question_terms) >= 3
        # the figure a "how much?" asks for is the answer, however short: "184.6 million pounds [1]"
        gives_figure = self._asks_figure and bool(figures - self._question_numbers)
        informative = ((says_more or gives_figure)
                       and (figures or not self._asks_figure)  # "how much?" needs a figure
                       and not _META.search(content))  # "the passage says ..." is talk about the prompt
        supported = informative and any(scores[n] >= SUPPORTED and figures <= self._numbers[n] for n in cited)
        if supported and not says_more:  # a bare figure: shown in its passage's sentence, which says what it counts
            context = self._sentence_with(figures, cited)
            content = f"\u201c{context}\u201d" if context else content
        return Claim(content, tuple(cited)), supported

    def _sentence_with(self, figures: set[str], cited: list[int]) -> str | None:
        texts = {s.n: s.hit.text for s in self.sources}
        return next((sentence for n in cited for sentence in sentences(_unwrap(texts[n]))
                     if figures <= numbers(sentence)), None)


def _is_list(lines: list[str]) -> bool:
    return sum(1 for line in lines if re.match(r"^(\d+[.)]|[-*•])\s", line)) >= 2
