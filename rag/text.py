"""Text clean-up shared by loaders and queries: unicode, whitespace, language detection."""

from __future__ import annotations

import re
import unicodedata

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u3000]+")
_HYPHEN_BREAK = re.compile(r"(?<=[a-z])-\n(?=[a-z])")
_BLANK_LINES = re.compile(r"\n{3,}")
_LEADERS = re.compile(r"(?:\s*[.·…_]){4,}\s*")  # "Cash ........ $ 876" dot leaders in tables of contents and statements
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LETTER = re.compile(r"[^\W\d_]")


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
    hangul = sum(1 for ch in letters if _HANGUL.match(ch))
    return hangul / len(letters) >= 0.3


def language(text: str) -> str:
    return "ko" if is_korean(text) else "en"


def estimate_tokens(text: str) -> int:
    """A conservative token count for budgeting without a tokenizer: ~4 ASCII characters a token, and up to
    1.5 tokens for every other character (Hangul costs 1-3 byte-level BPE tokens a syllable)."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return ascii_chars // 4 + int((len(text) - ascii_chars) * 1.5) + 1
