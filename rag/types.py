"""The small values that flow through the pipeline: pages in, chunks stored, hits found, answers out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Page:
    """One page (or section, for non-PDF files) of a source document, text already normalised."""

    source: str  # file name as shown to users
    page: int  # 1-based
    text: str
    ocr: bool = False  # text came from OCR, not from the file's text layer
    location: str = ""  # what ``page`` means for non-PDF files: "lines 61-120", "section 3: Results"


@dataclass(frozen=True, slots=True)
class Chunk:
    id: str  # deterministic: doc_id prefix + chunk index
    text: str
    source: str
    page: int
    doc_id: str  # sha256 of the file's bytes
    index: int  # position of the chunk within its document
    ocr: bool = False
    heading: str = ""  # nearest heading above the chunk, when one was detected
    location: str = ""  # Page.location of the chunk's page (non-PDF files)

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"source": self.source, "page": self.page, "doc_id": self.doc_id, "chunk": self.index}
        if self.ocr:
            meta["ocr"] = True
        if self.heading:
            meta["heading"] = self.heading
        if self.location:
            meta["location"] = self.location
        return meta


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk. ``score`` is cosine similarity in [0, 1] (higher is closer) for vector hits."""

    chunk_id: str
    text: str
    source: str
    page: int
    doc_id: str
    score: float
    ocr: bool = False
    heading: str = ""
    location: str = ""  # Chunk.location (metadata "location"), for non-PDF files

    def to_json(self) -> dict[str, Any]:
        data = {"source": self.source, "page": self.page, "text": self.text, "score": round(self.score, 4)}
        if self.location:
            data["location"] = self.location
        return data


@dataclass(frozen=True, slots=True)
class Source:
    """A numbered passage as shown to the model and cited in the answer as ``[n]``."""

    n: int
    hit: Hit

    def to_json(self) -> dict[str, Any]:
        return {"n": self.n, **self.hit.to_json()}


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None  # None when the model has no price in config
    estimated: bool = False  # the provider reported no counts; these are estimates

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost_usd is None and other.cost_usd is None else (self.cost_usd or 0) + (other.cost_usd or 0)
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens, cost,
                     self.estimated or other.estimated)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}
        if self.cost_usd is not None:
            data["cost_usd"] = round(self.cost_usd, 6)
        if self.estimated:
            data["estimated"] = True
        return data


@dataclass(frozen=True, slots=True)
class Claim:
    """One sentence of an answer and the numbered sources it cites. The citations are data, not text: the
    plain rendering puts them as ``[n]`` before the sentence's final punctuation, the app as links."""

    text: str  # the sentence without citation marks, its final punctuation included
    citations: tuple[int, ...] = ()
    new_line: bool = False  # starts a new line (the answer is a list)

    def split_end(self) -> tuple[str, str]:
        """(body, final punctuation): citations go between the two."""
        body = self.text.rstrip(".!?。")
        return body, self.text[len(body):]

    def plain(self) -> str:
        if not self.citations:
            return self.text
        body, end = self.split_end()
        return f"{body} {''.join(f'[{n}]' for n in self.citations)}{end}"


def plain_text(claims: Sequence[Claim]) -> str:
    """Claims as one string with ``[n]`` marks: a space between sentences, a newline before a list item."""
    out = ""
    for i, claim in enumerate(claims):
        if i:
            out += "\n" if claim.new_line else " "
        out += claim.plain()
    return out


@dataclass(frozen=True, slots=True)
class Search:
    """One search the model made through its search tool (``llm.tools``): the query, the documents it was limited
    to (empty: all), and the numbers of the passages it returned."""

    query: str
    documents: tuple[str, ...] = ()
    sources: tuple[int, ...] = ()
    tool: str = "search_documents"

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "query": self.query, "documents": list(self.documents), "sources": list(self.sources)}


@dataclass(frozen=True, slots=True)
class Answer:
    claims: tuple[Claim, ...]
    sources: list[Source]
    refused: bool
    usage: Usage = field(default_factory=Usage)
    question: str = ""  # the standalone question actually used for retrieval
    cached: bool = False  # answered from the answer cache (llm.cache): no model call, no cost
    searches: tuple[Search, ...] = ()  # the searches the model made with its tools (llm.tools), in order

    @classmethod
    def of_text(cls, text: str, sources: list[Source] | None = None, **kwargs: Any) -> Answer:
        """An answer of one uncited claim (a refusal, a message)."""
        return cls((Claim(text),), sources or [], **kwargs)

    @property
    def text(self) -> str:
        return plain_text(self.claims)

    @property
    def citations(self) -> list[int]:
        """The source numbers the answer cites, in order of first citation."""
        return list(dict.fromkeys(n for claim in self.claims for n in claim.citations))

    def cited(self) -> list[Source]:
        """Sources the answer cites, in citation order of first appearance."""
        by_n = {s.n: s for s in self.sources}
        return [by_n[n] for n in self.citations if n in by_n]

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "citations": self.citations,
            "sources": [s.to_json() for s in self.sources],
            "refused": self.refused,
            "usage": self.usage.to_json(),
            "cached": self.cached,
            **({"searches": [s.to_json() for s in self.searches]} if self.searches else {}),
        }


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    source: str
    doc_id: str
    pages: int
    chunks: int
    ingested_at: str  # ISO 8601, UTC
    ocr_pages: int = 0
    path: str = ""  # where the file was read from (for page previews); may no longer exist
    version: int = 0  # ingest pipeline version that produced the chunks (rag.ingest.VERSION)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Failure:
    """A file that was not ingested. ``reason`` is the one-line English message (with the fix); ``code`` says
    which kind of reason it is, and ``values`` its figures, for messages in other languages: "unsupported"
    (suffix), "same_name", "too_large" (size_mb, limit_mb), "unreadable" or "document" (its content)."""

    file: str
    reason: str
    code: str = "document"
    values: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(slots=True)
class IngestReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # e.g. pages skipped because OCR is not installed

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "updated": self.updated,
            "skipped": self.skipped,
            "failed": [{"file": f.file, "reason": f.reason} for f in self.failed],
            "warnings": self.warnings,
        }


@dataclass(slots=True)
class Batch:
    """What one batch of changes did."""

    report: IngestReport
    deleted: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        r = self.report
        return not (r.added or r.updated or r.skipped or r.failed or self.deleted)

    def summary(self) -> str:
        r = self.report
        return (f"added {len(r.added)}, updated {len(r.updated)}, skipped {len(r.skipped)}, failed {len(r.failed)}, "
                f"deleted {len(self.deleted)}")


Stage = Literal["parsing", "embedding", "added", "updated", "skipped", "failed"]
FINAL_STAGES = ("added", "updated", "skipped", "failed")


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of an ingest run, for progress bars. ``done`` files of ``total`` are finished. While a file is
    parsed, ``step`` of ``steps`` pages are read; while it is embedded, ``step`` of ``steps`` chunks are embedded
    (``unit`` says which). A finished file carries its ``document`` (added, updated, skipped) or its
    ``failure``."""

    file: str
    stage: Stage
    done: int
    total: int
    step: int = 0
    steps: int = 0
    unit: Literal["page", "chunk"] = "page"
    document: DocumentInfo | None = None
    failure: Failure | None = None


# -- the answer stream: what Rag.stream yields, in order ----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Retrieved:
    """Passages chosen for the prompt (empty when the answer is a refusal without a model call)."""

    sources: list[Source]
    question: str


@dataclass(frozen=True, slots=True)
class Token:
    text: str


@dataclass(frozen=True, slots=True)
class Done:
    answer: Answer


Event = Retrieved | Token | Done


# -- set-up checks (Rag.doctor) ---------------------------------------------------------------------------

OK, FAIL, SKIP = "OK", "FAIL", "SKIP"


@dataclass(frozen=True, slots=True)
class Check:
    """One check of the set-up: ``status`` OK, FAIL (``fix`` says what to do) or SKIP."""

    name: str
    status: str
    detail: str
    fix: str = ""
