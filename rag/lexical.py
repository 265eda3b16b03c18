"""Tokenisation for keyword search, English and Korean.

- Latin script: lower-cased, English stop words dropped, Snowball-stemmed ("revenues" -> "revenu").
- Numbers: kept, thousands separators removed ("1,850" -> "1850"), so figures match across formats.
- Hangul: Kiwi morphological analysis keeps content morphemes (nouns, roots, verb/adjective stems) and drops
  particles and endings, which whitespace splitting would leave glued to nouns ("생산량은" -> "생산량").
  Long nouns Kiwi does not know ("한빛스마트팜") also yield their character bigrams, so a query for a part of
  the name still matches.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_LATIN_OR_NUMBER = re.compile(r"[a-z]+|\d[\d,]*(?:\.\d+)?")  # on lower-cased text: "Adobe's FY2015" -> adobe, s, fy, 2015
_KEEP_TAGS = frozenset({"NNG", "NNP", "NR", "XR", "SH", "VV", "VA", "SL"})

STOP_WORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before being below between "
    "both but by can could did do does doing down during each few for from further had has have having he her "
    "here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not "
    "now of off on once only or other our ours ourselves out over own same she should so some such than that the "
    "their theirs them themselves then there these they this those through to too under until up very was we "
    "were what when where which while who whom why will with would you your yours yourself yourselves "
    "also may might must shall per via use used using please give answer question round provide based following "
    "according".split())

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _kiwi() -> Any:
    from kiwipiepy import Kiwi

    return Kiwi()


def _latin(text: str) -> list[str]:
    words: list[str] = []
    for match in _LATIN_OR_NUMBER.finditer(text.lower()):
        token = match.group()
        if token[0].isdigit():
            words.append(token.rstrip(",").replace(",", ""))
        elif len(token) > 1 and token not in STOP_WORDS:
            words.append(token)
    stemmer = _stemmer()
    return [w if w[0].isdigit() else stemmer.stemWord(w) for w in words]


def _korean(text: str) -> list[str]:
    with _lock:  # Kiwi instances are not documented as thread-safe
        morphemes = _kiwi().tokenize(text)
    tokens: list[str] = []
    for m in morphemes:
        if m.tag not in _KEEP_TAGS or not _HANGUL.search(m.form):
            continue
        tokens.append(m.form)
        if m.tag == "NNP" and len(m.form) >= 4:
            tokens.extend(m.form[i:i + 2] for i in range(len(m.form) - 1))
    return tokens


_NAME = re.compile(r"(?<![\w.])([A-Z][a-z]+(?:[A-Z][a-z]+)*)(?:'s|’s)?(?![\w])")


def names(text: str) -> list[str]:
    """Capitalised Latin words inside a sentence that may name something ("What was Tesla's ..."). Words that
    start a sentence ("Tell me ..."), acronyms (FY, DPO) and stop words are left out."""
    found: dict[str, None] = {}
    for match in _NAME.finditer(text):
        word = match.group(1)
        before = text[:match.start()].rstrip(" \t\"'“‘(<[")
        if not before or before[-1] in ".?!:;\n" or len(word) < 3 or word.lower() in STOP_WORDS:
            continue
        found.setdefault(word, None)
    return list(found)


def tokenize(text: str) -> list[str]:
    """Search terms of ``text``, in order (repeats kept: BM25 counts them)."""
    tokens = _latin(text)
    if _HANGUL.search(text):
        tokens.extend(_korean(text))
    return tokens
