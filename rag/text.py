"""Text analysis, in one place: clean-up, language, and the three kinds of terms the pipeline compares.

- ``normalise``: what loaders store (NFKC, no control characters or dot leaders, spaces collapsed).
- ``is_korean`` / ``language``: a question's language (Hangul share of its letters).
- ``tokenize``: keyword-index terms (BM25). Latin script lower-cased, stop words dropped, Snowball-stemmed
  ("revenues" -> "revenu"); numbers kept without thousands separators ("1,850" -> "1850"); Hangul by Kiwi
  morphological analysis, keeping content morphemes and dropping the particles and endings that whitespace
  splitting would leave glued to nouns ("생산량은" -> "생산량"); long proper nouns Kiwi does not know
  ("한빛스마트팜") also yield their character bigrams, so a query for part of the name still matches.
- ``terms``: containment terms for grounding (does a passage hold what an answer sentence says?): lower-cased
  words without stop words, and character bigrams for Hangul, so no morphological analysis is needed per sentence.
- ``highlight_terms``: the surface words of a question to mark in a passage (Korean particles stripped).
- ``names``: capitalised words inside a sentence that may name something ("What was Tesla's ...").
- ``compounds``: adjacent words joined ("Best Buy" -> "BestBuy"), to match names written without spaces.
- ``document_title``: a document's searchable title, from its file name.

All share one stop-word list and one definition of Hangul.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from pathlib import PurePath
from typing import Any

HANGUL = re.compile(r"[\uac00-\ud7a3]")  # precomposed syllables (what NFKC-normalised text holds)
_HANGUL_LETTER = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")  # syllables and jamo
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"\w+")

STOP_WORDS = frozenset(
    "a about above after again against all am an and any are as at be because been before being below between "
    "both but by can could did do does doing down during each few for from further had has have having he her "
    "here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not "
    "now of off on once only or other our ours ourselves out over own same she should so some such than that the "
    "their theirs them themselves then there these they this those through to too under until up very was we "
    "were what when where which while who whom why will with would you your yours yourself yourselves "
    "also may might must shall per via use used using please give answer question round provide based following "
    "according".split())
# Words an answer uses to talk about the prompt rather than the documents' content ("passage 2 states ...").
PROMPT_WORDS = frozenset("passage passages document documents text states mentions".split())


# -- clean-up and language ---------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_BLANK_LINES = re.compile(r"\n{3,}")
_LEADERS = re.compile(r"(?:\s*[.·…_]){4,}\s*")  # "Cash ........ $ 876" dot leaders in tables of contents and statements


def normalise(text: str) -> str:
    """NFKC (composes Hangul jamo, unfolds ligatures), drops control characters and lone surrogates, removes
    dot leaders, collapses runs of spaces (pypdf doubles them in some PDFs), joins words hyphenated across lines."""
    text = text.encode("utf-8", "ignore").decode("utf-8")
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    text = _LEADERS.sub(" ", text)
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _HYPHEN_BREAK.sub("", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def is_korean(text: str) -> bool:
    """True when Hangul makes up a real share of the letters (a Korean question may quote English names)."""
    letters = _LETTER.findall(text)
    if not letters:
        return False
    hangul = sum(1 for ch in letters if _HANGUL_LETTER.match(ch))
    return hangul / len(letters) >= 0.3


def language(text: str) -> str:
    return "ko" if is_korean(text) else "en"


def estimate_tokens(text: str) -> int:
    """A conservative token count for budgeting without a tokenizer: ~4 ASCII characters a token, and up to
    1.5 tokens for every other character (Hangul costs 1-3 byte-level BPE tokens a syllable)."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return ascii_chars // 4 + int((len(text) - ascii_chars) * 1.5) + 1


# -- keyword-index terms -----------------------------------------------------------------------------------

_LATIN_OR_NUMBER = re.compile(r"[a-z]+|\d[\d,]*(?:\.\d+)?")  # on lower-cased text: "Adobe's FY2015" -> adobe, s, fy, 2015
_KEEP_TAGS = frozenset({"NNG", "NNP", "NR", "XR", "SH", "VV", "VA", "SL"})
_kiwi_lock = threading.Lock()


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
    with _kiwi_lock:  # Kiwi instances are not documented as thread-safe
        morphemes = _kiwi().tokenize(text)
    tokens: list[str] = []
    for m in morphemes:
        if m.tag not in _KEEP_TAGS or not HANGUL.search(m.form):
            continue
        tokens.append(m.form)
        if m.tag == "NNP" and len(m.form) >= 4:
            tokens.extend(m.form[i:i + 2] for i in range(len(m.form) - 1))
    return tokens


def tokenize(text: str) -> list[str]:
    """Keyword-index terms of ``text``, in order (repeats kept: BM25 counts them)."""
    tokens = _latin(text)
    if HANGUL.search(text):
        tokens.extend(_korean(text))
    return tokens


_JOINABLE = re.compile(r"(?<![\w&'’-])[A-Za-z]+(?:[ \t]+[A-Za-z]+)+(?![\w&-])")


def compounds(text: str, longest: int = 3) -> list[tuple[str, str]]:
    """Adjacent words (not across stop words or punctuation) joined two or three at a time, longest first,
    each with the words it joins: "American Water Works" -> ("AmericanWaterWorks", "American Water Works"),
    ("AmericanWater", ...), ("WaterWorks", ...). File names and identifiers write names without spaces
    ("BESTBUY_2019_10K.pdf"), and a question written with spaces would otherwise never match them. The caller
    keeps those its index knows."""
    found: dict[str, str] = {}
    for run in _JOINABLE.finditer(text):
        for words in _between_stop_words(run.group().split()):
            for size in range(longest, 1, -1):
                for start in range(len(words) - size + 1):
                    found.setdefault("".join(words[start:start + size]), " ".join(words[start:start + size]))
    return list(found.items())


def _between_stop_words(words: list[str]) -> list[list[str]]:
    groups: list[list[str]] = [[]]
    for word in words:
        if word.lower() in STOP_WORDS:
            groups.append([])
        else:
            groups[-1].append(word)
    return [g for g in groups if len(g) > 1]


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


def document_title(source: str) -> str:
    """A searchable title from the file name: "ADOBE_2015_10K.pdf" -> "ADOBE 2015 10K"."""
    return re.sub(r"[_\-.]+", " ", PurePath(source).stem).strip()


# -- grounding terms ---------------------------------------------------------------------------------------

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


def terms(text: str) -> set[str]:
    """Containment terms: words (stop and prompt words left out, a plural "s" dropped) and Hangul bigrams."""
    out: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if HANGUL.search(word) and len(word) > 1:
            out.update(word[i:i + 2] for i in range(len(word) - 1))
        elif HANGUL.search(word):
            out.add(word)
        elif word not in STOP_WORDS and word not in PROMPT_WORDS and (len(word) > 1 or word.isdigit()):
            out.add(word[:-1] if len(word) > 3 and word.endswith("s") else word)  # not the "s" of "Aurora's"
    return out


def numbers(text: str) -> set[str]:
    """The figures in ``text``, without thousands separators: "1,850.5" -> "1850.5"."""
    return {n.replace(",", "").rstrip(".") for n in _NUMBER.findall(text)}


# -- highlighting ------------------------------------------------------------------------------------------

_PARTICLE = re.compile(r"(에서|으로|에게|까지|부터|이다|였다|은|는|이|가|을|를|의|에|로|와|과|도|만|요)$")


def highlight_terms(question: str) -> list[str]:
    """Words of a question worth marking in a passage: no stop words; Korean particles stripped."""
    found: dict[str, None] = {}
    for word in _WORD.findall(question.lower()):
        if HANGUL.search(word):
            stem = _PARTICLE.sub("", word) if len(word) > 2 else word
            if len(stem) >= 2:
                found.setdefault(stem, None)
        elif word.isdigit() or (len(word) >= 3 and word not in STOP_WORDS):
            found.setdefault(word[:-1] if len(word) > 4 and word.endswith("s") else word, None)
    return list(found)
