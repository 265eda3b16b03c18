"""Answer accuracy on a QA set (``python -m rag eval QA.jsonl --docs DIR --answers``): ``ask`` on every question.

Reported, for the configured chat model:

- ``key_value_found``: share of answerable questions whose answer contains the gold answer's key value;
- ``all_values_found``: the stricter share whose answer contains every figure of the gold answer;
- ``cited_gold_page``: share of answerable questions whose answer cites a gold page (right document and page);
- ``refused_unanswerable`` / ``refused_answerable``: refusals (``Answer.refused``);
- ``seconds_per_answer`` (mean, p50) and ``first_token_s`` (p50);
- ``errors``: questions the provider failed on (e.g. a prompt longer than a small model's context), counted
  as not answered, and the run goes on.

The key value of a gold answer:

- **yes or no** when the gold answer starts with one ("Yes. It decreased.", "No, ... negative working capital of
  -$1561M", "아니요, ..."): the answer must say the same (and not the opposite). The figures after it support
  the yes or no; an answer that also holds them counts in ``all_values_found``.
- **a figure** when the gold answer has one that the question does not already state (years and amounts the
  question names are not answers): the first such figure. Figures are compared as numbers, whatever their
  writing: "162,000", "16만 2천", "16.2만" and "162 thousand" are one value; "$1,577", "1577" and "$1.577 billion"
  match (a difference of a unit: thousands, millions, 만, 억 ...); "4.2%" matches "4.2 %"; rounding to the gold
  answer's decimals is allowed ("0.66" matches "0.657"), and so is a relative error of 0.5%.
- **otherwise, term overlap**: at least 40% of the gold answer's content terms (``rag.text.terms``: words
  without stop words, and Hangul bigrams), leaving out those of the question, must appear in the answer.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rag.errors import RagError
from rag.text import terms
from rag.types import Answer, Done, Token

if TYPE_CHECKING:
    from rag.api import Rag
    from rag.eval.retrieval import Question

OVERLAP = 0.4  # share of the gold answer's new content terms the answer must contain (non-numeric answers)
REL_TOL = 0.005

# -- figures ------------------------------------------------------------------------------------------------

_KO_UNITS = {"천": 1e3, "만": 1e4, "억": 1e8, "조": 1e12}
_EN_UNITS = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9, "b": 1e9,
             "trillion": 1e12, "tn": 1e12}
# a number (thousands separators, decimals; a minus or parentheses for negatives), then an optional unit: Korean
# ("16만 2천", "4.2조", "1억 2천만") or English ("million", "bn", "M"). Not inside a word ("FY2018", "10-K").
_FIGURE = re.compile(
    r"(?<![\w.])(?P<neg>[-−–(](?=\s?[$€£¥₩]?\s?\d))?\s?[$€£¥₩]?\s?(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?!\d|\.\d|,\d|-[A-Za-z])"
    r"(?P<rest>\s?[천만억조](?:\s?(?:\d+(?:\.\d+)?\s?)?[천만억조])*|\s?(?:thousand|million|billion|trillion|bn|mn|tn)\b"
    r"|[kKmMbB]\b)?\)?", re.I)
# units between two values: thousands, millions, ... and the Korean 만 / 억 steps ("$1,577" matches "$1.577 billion")
_SCALES = sorted({10.0 ** (3 * k) for k in range(-4, 5)} | {1e4, 1e-4, 1e8, 1e-8}, key=lambda x: abs(math.log10(x)))


@dataclass(frozen=True, slots=True)
class Figure:
    value: float
    decimals: int  # as written: "0.66" has 2, which is how far the comparison may round
    text: str


def figures(text: str) -> list[Figure]:
    """The figures of ``text``, in order, with Korean and English units applied ("16만 2천" -> 162000)."""
    out: list[Figure] = []
    for m in _FIGURE.finditer(text):
        num = m.group("num").replace(",", "")
        value = float(num)
        decimals = len(num.split(".")[1]) if "." in num else 0
        rest = (m.group("rest") or "").strip()
        if rest[:1] in _KO_UNITS:
            value = _korean_amount(value, rest)
        elif rest:
            value *= _EN_UNITS.get(rest.lower(), 1.0)
        out.append(Figure(-value if m.group("neg") else value, decimals, m.group(0).strip()))
    return out


def _korean_amount(lead: float, rest: str) -> float:
    """``lead`` followed by Korean units: 16 + "만 2천" -> 162000; 1 + "억 2천만" -> 120000000; 4.2 + "조"."""
    total = section = 0.0
    current = lead
    for number, unit in re.findall(r"(\d+(?:\.\d+)?)?\s?([천만억조])", rest):
        if number:
            current = float(number)
        if unit == "천":
            section += current * 1e3
        else:
            total += (section + current) * _KO_UNITS[unit]
            section = 0.0
        current = 0.0
    return total + section + current


def same_value(gold: Figure, found: Figure) -> bool:
    """Equal, up to a unit (thousands, millions, 만, 억), rounding to the gold's decimals or 0.5%."""
    return any(_close(gold, found.value * scale) for scale in _SCALES)


def _close(gold: Figure, value: float) -> bool:
    if math.isclose(gold.value, value, rel_tol=REL_TOL, abs_tol=1e-9):
        return True
    return gold.decimals > 0 and round(value, gold.decimals) == round(gold.value, gold.decimals)


# -- the key value ------------------------------------------------------------------------------------------

_YES = re.compile(r"^\W*(yes|네|예)\b", re.I)
_NO = re.compile(r"^\W*(no|아니요|아니오|아닙니다)\b", re.I)
_SAYS_YES = re.compile(r"\byes\b|^\W*(네|예)\b|맞습니다|그렇습니다", re.I)
_SAYS_NO = re.compile(r"\bno\b|\bnot\b|아니|않", re.I)


@dataclass(frozen=True, slots=True)
class Judgement:
    key_found: bool
    all_found: bool
    rule: str  # "figure", "yes/no" or "overlap"


def judge(question: str, gold: str, answer: str) -> Judgement:
    """Whether ``answer`` holds the key value of ``gold`` (see the module docstring for the rules)."""
    asked = {float(n.replace(",", "")) for n in re.findall(r"\d[\d,]*(?:\.\d+)?", question)}  # "FY2022" too
    gold_figures = [g for g in figures(gold) if abs(g.value) not in asked]
    found = figures(answer)
    hits = [any(same_value(g, f) for f in found) for g in gold_figures]
    if _YES.search(gold) or _NO.search(gold):
        positive = bool(_YES.search(gold))
        says_yes, says_no = bool(_SAYS_YES.search(answer)), bool(_SAYS_NO.search(answer))
        ok = (says_yes and not says_no) if positive else says_no
        return Judgement(ok, ok and all(hits), "yes/no")
    if gold_figures:
        return Judgement(hits[0], all(hits), "figure")
    wanted = terms(gold) - terms(question)
    if not wanted:
        wanted = terms(gold)
    share = len(wanted & terms(answer)) / len(wanted) if wanted else 0.0
    return Judgement(share >= OVERLAP, share >= OVERLAP, "overlap")


# -- running the set ----------------------------------------------------------------------------------------

@dataclass
class Asked:
    question: Question
    answer: Answer
    seconds: float
    first_token: float | None
    judgement: Judgement | None  # None for unanswerable questions
    error: str | None = None  # the provider's error message when asking failed (counted, and the run goes on)

    def cites_gold(self) -> bool:
        q = self.question
        return any(s.hit.source == q.doc and s.hit.page in q.pages for s in self.answer.cited())


def ask_all(rag: Rag, questions: Iterable[Question], k: int | None = None) -> list[Asked]:
    out = []
    for q in questions:
        started = time.perf_counter()
        first: float | None = None
        answer: Answer | None = None
        try:
            for event in rag.stream(q.question, k=k):
                if isinstance(event, Token) and first is None:
                    first = time.perf_counter() - started
                elif isinstance(event, Done):
                    answer = event.answer
        except RagError as exc:  # e.g. a prompt too long for a small model: one question lost, not the run
            out.append(Asked(q, Answer.of_text(f"error: {exc.message}", refused=False), time.perf_counter() - started, first,
                             Judgement(False, False, "error") if q.answerable else None, error=exc.message))
            continue
        assert answer is not None
        gold = str(q.extra.get("answer") or "")
        judgement = judge(q.question, gold, answer.text) if q.answerable and not answer.refused else (
            Judgement(False, False, "refused") if q.answerable else None)
        out.append(Asked(q, answer, time.perf_counter() - started, first, judgement))
    return out


def summarise(asked: list[Asked]) -> dict[str, Any]:
    answerable = [a for a in asked if a.question.answerable]
    unanswerable = [a for a in asked if not a.question.answerable]
    n = max(len(answerable), 1)
    seconds = [a.seconds for a in asked]
    firsts = [a.first_token for a in asked if a.first_token is not None]
    return {
        "questions": len(asked), "answerable": len(answerable), "unanswerable": len(unanswerable),
        "key_value_found": sum(bool(a.judgement and a.judgement.key_found) for a in answerable) / n,
        "all_values_found": sum(bool(a.judgement and a.judgement.all_found) for a in answerable) / n,
        "cited_gold_page": sum(a.cites_gold() for a in answerable) / n,
        "refused_answerable": sum(a.answer.refused for a in answerable) / n,
        "refused_unanswerable": (sum(a.answer.refused for a in unanswerable) / len(unanswerable)) if unanswerable else None,
        "seconds_per_answer": statistics.fmean(seconds) if seconds else 0.0,
        "seconds_p50": statistics.median(seconds) if seconds else 0.0,
        "first_token_s_p50": statistics.median(firsts) if firsts else None,
        "errors": sum(a.error is not None for a in asked),
    }


def details(asked: list[Asked]) -> list[dict[str, Any]]:
    return [{"id": a.question.id, "answerable": a.question.answerable, "refused": a.answer.refused,
             "key_found": a.judgement.key_found if a.judgement else None,
             "rule": a.judgement.rule if a.judgement else None, "cites_gold": a.cites_gold(),
             "seconds": round(a.seconds, 2), "first_token": None if a.first_token is None else round(a.first_token, 2),
             "error": a.error, "answer": a.answer.text, "gold": a.question.extra.get("answer")}
            for a in asked]


def format_table(rows: list[tuple[str, dict[str, Any]]]) -> str:
    columns = ["key_value_found", "all_values_found", "cited_gold_page", "refused_answerable", "refused_unanswerable",
               "seconds_per_answer", "first_token_s_p50", "errors"]
    header = ["model", "key value", "all values", "cites gold page", "refused (ans)", "refused (unans)", "s/answer",
              "first token s", "errors"]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for name, summary in rows:
        cells = [name]
        for col in columns:
            value = summary.get(col)
            cells.append("-" if value is None else str(value) if col == "errors" else
                         f"{value:.1f}" if col.startswith(("seconds", "first")) else f"{value:.3f}")
        lines.append(" | ".join(cells))
    return "\n".join(lines)
