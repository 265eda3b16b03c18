"""Crash trials with real processes, shared by ``tests/test_crash.py`` and ``bench/crash.py``: a corpus of real
PDFs, a traced child (``ingest.py`` or ``app.py``) that notes which phase it is in, and the consistency checks
run after the kill and the repairing re-run.

The child runs as ``python -m tests.crashes MARKS SCRIPT ARGS...``: it wraps a few library methods so that each
writes ``+phase`` on entry and ``-phase`` on exit (with a monotonic time) to the file MARKS, then runs SCRIPT as
``__main__``. Nothing else changes: the phase a ``kill -9`` landed in is the innermost phase open at the kill.
With ``CRASH_HOLD=<point>`` the child stops for a minute at that point (marked ``+hold:<point>``), so that a kill
lands exactly there: ``upsert`` (after the first batch of a document's new chunks reached Chroma),
``delete`` (new chunks written, stale ones not yet deleted), ``manifest`` (new manifest in its temporary file,
not yet renamed), ``bm25`` (keyword tokens renamed into place, their ``meta.json`` not yet),
``stage`` (an upload's copy in the upload folder, not yet ingested).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = "documents"

# -- the corpus --------------------------------------------------------------------------------------------

_WORDS = ("river plant budget review staff training reactor harbour permit board storage battery canal bridge "
          "survey audit freight cargo tunnel signal pump valve turbine cable grid meter tariff ledger invoice "
          "schedule inspection report quarter annual growth market supply demand export import vessel crane").split()
_KOREAN = ("항공 보고서 운항 실적 탑승객 정시 계획 친환경 항공기 도입 설립 제주 안전 교육 직원 정비 노선 수송 화물 "
           "연료 효율 예산 투자 이사회 승인 고객 만족 서비스 개선").split()
# One made-up word per file, found in no other: a search for it must find that file.
MARKERS = ["quorvane", "belthrix", "mandresk", "tolvexa", "pryndale", "zastorin"]
KOREAN_MARKER = "누리별솔바람"


def _prose(rng: random.Random, words: list[str], marker: str, sentences: int, korean: bool = False) -> str:
    out = []
    for i in range(sentences):
        picked = [rng.choice(words) for _ in range(rng.randint(7, 14))]
        if i % 5 == 0:
            picked.insert(rng.randint(0, len(picked)), marker)
        out.append(" ".join(picked) + ("." if not korean else "다."))
    return " ".join(out)


def write_corpus(folder: Path, *, seed: int = 0, pages: tuple[int, ...] = (1, 3, 6, 10, 14),
                 korean_pages: int = 4, edition: int = 0) -> dict[str, str]:
    """Real PDFs in ``folder`` (English of ``pages`` pages each, and one Korean); returns {file name: a word
    only that file holds}. ``edition`` changes every page's text (an updated document)."""
    from tests.pdfs import write_pdf

    rng = random.Random(seed * 1000 + edition)
    words: dict[str, str] = {}
    for i, count in enumerate(pages):
        marker = MARKERS[i]
        texts = [f"Report {marker} part {p + 1} edition {edition}\n\n" + _prose(rng, _WORDS, marker, 28)
                 for p in range(count)]
        name = f"report-{i + 1}-{marker}.pdf"
        write_pdf(folder / name, texts)
        words[name] = marker
    texts = [f"{KOREAN_MARKER} 보고서 {p + 1}쪽 {edition}판\n\n" + _prose(rng, _KOREAN, KOREAN_MARKER, 22, korean=True)
             for p in range(korean_pages)]
    write_pdf(folder / "누리별 보고서.pdf", texts)
    words["누리별 보고서.pdf"] = KOREAN_MARKER
    return words


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- the traced child --------------------------------------------------------------------------------------

def child_env(store: Path, *, uploads: Path | None = None, hold: str = "", extra: dict[str, str] | None = None
              ) -> dict[str, str]:
    env = {**os.environ, "RAG_STORE__PATH": str(store), "PYTHONPATH": str(ROOT), "CRASH_HOLD": hold,
           "PYTHONUNBUFFERED": "1", **(extra or {})}
    if uploads is not None:
        env["RAG_APP__UPLOAD_DIR"] = str(uploads)
    return env


def start_child(script: str, args: list[str], marks: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """``python -m tests.crashes MARKS SCRIPT ARGS`` in a session of its own (so that its parse workers can be
    found and cleaned up after the kill)."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.crashes", str(marks), script, *args], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def kill9(proc: subprocess.Popen) -> list[int]:
    """``kill -9`` the child (only it, as a crash would), then the processes it left in its session (parse
    workers, the forkserver): returns the ids of those still alive 1 s after the kill."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(1.0)
    left = [pid for pid in _session(proc.pid) if pid != proc.pid]
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def _session(sid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid and "Z" not in _state(entry):
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError, OSError):
                pass
    return pids


def _state(entry: Path) -> str:
    try:
        return (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def read_marks(marks: Path) -> list[tuple[str, str, float]]:
    """(sign, phase, time) for each mark the child wrote."""
    out = []
    if not marks.exists():
        return out
    for line in marks.read_text(encoding="utf-8").splitlines():
        parts = line.split(" ")
        if len(parts) == 2 and parts[0][:1] in "+-":
            out.append((parts[0][0], parts[0][1:], float(parts[1])))
    return out


def phase_at(marks: list[tuple[str, str, float]], when: float) -> str:
    """The innermost phase open at ``when`` (monotonic), by the child's marks: ``embed``, ``upsert``... Waiting
    inside a file's write step with nothing else open is ``parse`` (the parse pool has not answered yet); inside
    the run with nothing open, ``plan`` before the first file and ``after <phase>`` once files were written."""
    open_: list[str] = []
    last = "start"
    files = 0  # files whose write step ended
    for sign, phase, t in marks:
        if t > when:
            break
        if sign == "+":
            open_.append(phase)
        elif phase in open_:
            del open_[len(open_) - 1 - open_[::-1].index(phase)]
            files += phase == "file"
            last = phase if phase != "file" else last
    if not open_:
        return "done" if last == "ingest" else f"after {last}"
    inner = open_[-1]
    if inner.startswith("hold:"):
        return f"{open_[-2] if len(open_) > 1 else inner[5:]} (held)"
    if inner == "ingest":  # between steps: planning, or after the last file's manifest write
        return f"after {last}" if files else "plan"
    return "parse" if inner == "file" else inner


def wait_for_mark(marks: Path, phase: str, timeout: float, proc: subprocess.Popen | None = None, *,
                  count: int = 1) -> float | None:
    """Poll (every millisecond) until the child marks ``+phase`` for the ``count``-th time; the time of that
    mark, or None (the child ended first, or ``timeout``)."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        try:
            with marks.open("rb") as f:
                f.seek(seen)
                data = f.read()
        except FileNotFoundError:
            data = b""
        if data:
            text = data.decode("utf-8", "ignore")
            cut = text.rfind("\n") + 1
            seen += len(text[:cut].encode("utf-8"))
            for line in text[:cut].splitlines():
                if line.startswith(f"+{phase} "):
                    count -= 1
                    if count <= 0:
                        return float(line.split(" ")[1])
        if proc is not None and proc.poll() is not None:
            return None
        time.sleep(0.001)
    return None


def _trace(marks_path: str) -> None:
    """In the child: wrap the phases' methods so that they mark their entry and exit."""
    import functools

    from rag.ingest import pipeline, uploads
    from rag.search import bm25, catalog, store

    fd = os.open(marks_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    hold = os.environ.get("CRASH_HOLD", "")

    def mark(text: str) -> None:
        os.write(fd, f"{text} {time.monotonic():.6f}\n".encode())

    def held(point: str) -> None:
        if hold == point:
            mark(f"+hold:{point}")
            time.sleep(60)

    def wrap(owner: Any, name: str, phase: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def traced(*args: Any, **kwargs: Any) -> Any:
            mark(f"+{phase}")
            try:
                return original(*args, **kwargs)
            finally:
                mark(f"-{phase}")

        setattr(owner, name, traced)

    # Hold points: inside a phase, at the step whose interruption matters most.
    upsert = store.Store._upsert

    def held_upsert(self: Any, col: Any, chunks: list, vectors: Any) -> None:
        if hold == "upsert" and len(chunks) > 1:
            upsert(self, col, chunks[:1], vectors[:1])
            held("upsert")
        upsert(self, col, chunks, vectors)

    store.Store._upsert = held_upsert  # type: ignore[method-assign]
    delete_ids = store.Store._delete_ids

    def held_delete(self: Any, col: Any, ids: list) -> None:
        if ids:
            held("delete")
        delete_ids(self, col, ids)

    store.Store._delete_ids = held_delete  # type: ignore[method-assign]
    replace = os.replace

    def held_replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        name = Path(dst).name
        if name.endswith(".manifest.json"):
            held("manifest")
        elif name == "meta.json":
            held("bm25")
        replace(src, dst, *args, **kwargs)

    os.replace = held_replace
    stage = uploads.UploadFolder.stage

    def held_stage(self: Any, temp: Path, name: str) -> Any:
        staged = stage(self, temp, name)
        held("stage")
        return staged

    uploads.UploadFolder.stage = held_stage  # type: ignore[method-assign]

    # Marks: outside the hold points, so that a hold is inside its phase.
    wrap(pipeline.Ingestor, "ingest", "ingest")
    wrap(pipeline.Ingestor, "_write_one", "file")
    wrap(store.Store, "_upsert", "upsert")
    wrap(store.Store, "_delete_ids", "delete")
    wrap(catalog.FileCatalog, "_write", "manifest")
    wrap(bm25.BM25Index, "_save", "bm25")
    wrap(store.Store, "_rebuild_keyword_index", "bm25-rebuild")
    wrap(uploads.UploadFolder, "stage", "stage")

    write = pipeline.Ingestor.write

    @functools.wraps(write)
    def traced_write(self: Any, parsed: Any, embedder: Any, on_embedded: Any = None) -> Any:
        embed = embedder.embed_documents
        if not getattr(embed, "_traced", False):
            def traced_embed(texts: Any) -> Any:
                mark("+embed")
                try:
                    return embed(texts)
                finally:
                    mark("-embed")
            traced_embed._traced = True  # type: ignore[attr-defined]
            embedder.embed_documents = traced_embed
        return write(self, parsed, embedder, on_embedded)

    pipeline.Ingestor.write = traced_write  # type: ignore[method-assign]

    factory_owner = pipeline.Ingestor.__init__

    @functools.wraps(factory_owner)
    def init(self: Any, store_: Any, embedder_factory: Any, *args: Any, **kwargs: Any) -> None:
        def load() -> Any:
            mark("+model")
            try:
                return embedder_factory()
            finally:
                mark("-model")
        factory_owner(self, store_, load, *args, **kwargs)

    pipeline.Ingestor.__init__ = init  # type: ignore[method-assign]


def _child_main(argv: list[str]) -> None:
    import runpy

    marks, script, *args = argv
    _trace(marks)
    sys.argv = [script, *args]
    runpy.run_path(str(ROOT / script), run_name="__main__")


# -- the checks --------------------------------------------------------------------------------------------

@dataclass
class Checked:
    problems: list[str] = field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    orphans: list[str] = field(default_factory=list)  # files in the folder the manifest does not name

    @property
    def ok(self) -> bool:
        return not self.problems


def check_store(store_path: Path, files: dict[Path, str], embedder: Any, *, require_files: bool = True,
                environ: dict[str, str] | None = None) -> Checked:
    """The store, its keyword index and its manifest agree, and every file in ``files`` ({path: a word only it
    holds}) is in the manifest with its current bytes and found by a search for its word (with ``embedder``, and
    ``environ``'s settings). Opens nothing for writing before the on-disk checks (the keyword index is read from
    its files)."""
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings as ChromaSettings

    from rag.ingest.pipeline import VERSION
    from rag.search.catalog import FileCatalog

    out = Checked()
    manifest = FileCatalog(store_path / f"{COLLECTION}.manifest.json").load()
    out.documents = len(manifest)

    # Chroma: every chunk, by document
    ids, metas = [], []
    if (store_path / "chroma.sqlite3").exists():
        client = chromadb.PersistentClient(path=str(store_path), settings=ChromaSettings(anonymized_telemetry=False))
        try:
            got = client.get_collection(COLLECTION).get(include=["metadatas"])
            ids, metas = list(got["ids"]), list(got["metadatas"])
        except Exception as exc:  # noqa: BLE001 - no collection: only fine when the manifest is empty
            if manifest:
                out.problems.append(f"no Chroma collection but {len(manifest)} documents in the manifest ({exc})")
    elif manifest:
        out.problems.append(f"no Chroma store but {len(manifest)} documents in the manifest")
    out.chunks = len(ids)
    if len(set(ids)) != len(ids):
        out.problems.append(f"Chroma: {len(ids) - len(set(ids))} duplicated chunk ids")
    by_doc: dict[tuple[str, str], set[str]] = {}
    for cid, meta in zip(ids, metas):
        by_doc.setdefault((meta["source"], meta["doc_id"]), set()).add(cid)
    for (source, doc_id), chunk_ids in by_doc.items():
        info = manifest.get(source)
        if info is None:
            out.problems.append(f"Chroma: {len(chunk_ids)} chunks of '{source}', which the manifest does not name")
        elif info.doc_id != doc_id:
            out.problems.append(f"Chroma: {len(chunk_ids)} chunks of a version of '{source}' the manifest does "
                                "not name")
    for source, info in manifest.items():
        held = by_doc.get((source, info.doc_id), set())
        if len(held) != info.chunks:
            out.problems.append(f"Chroma: '{source}' has {len(held)} chunks, the manifest says {info.chunks}")
    expected = {cid for (source, doc_id), group in by_doc.items()
                if (info := manifest.get(source)) is not None and info.doc_id == doc_id for cid in group}

    # the keyword index as saved: same chunks, and the stamp of this manifest
    meta_path = store_path / f"{COLLECTION}.bm25" / "meta.json"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        meta = {"ids": [], "stamp": ""}
        if manifest:
            out.problems.append(f"keyword index unreadable ({exc})")
    kw_ids = list(meta["ids"])
    if len(set(kw_ids)) != len(kw_ids):
        out.problems.append(f"keyword index: {len(kw_ids) - len(set(kw_ids))} duplicated chunk ids")
    if set(kw_ids) != expected:
        out.problems.append(f"keyword index: {len(set(kw_ids) - expected)} chunk ids not in the store, "
                            f"{len(expected - set(kw_ids))} stored chunks missing")
    stamp = hashlib.sha256("\n".join(f"{d.source}\t{d.doc_id}" for d in
                                     sorted(manifest.values(), key=lambda d: d.source.lower()))
                           .encode("utf-8")).hexdigest()[:16]
    if manifest and meta.get("stamp") != stamp:
        out.problems.append("keyword index: saved with the stamp of another manifest (would be rebuilt)")

    # the folder: every file in the manifest with its current bytes, and found by its word
    by_path = {}
    for path, word in files.items():
        info = manifest.get(path.name)
        if info is None:
            (out.problems if require_files else out.orphans).append(
                f"'{path.name}' is not in the manifest" if require_files else path.name)
            continue
        if info.doc_id != sha256(path) or info.version != VERSION:
            out.problems.append(f"'{path.name}': the manifest holds another version of the file")
        by_path[path] = word
    if by_path and not out.problems:
        from rag import Rag
        from rag.config import load_config

        rag = Rag(load_config(environ={**(environ or {}), "RAG_STORE__PATH": str(store_path)}), embedder=embedder)
        for path, word in by_path.items():
            hits = rag.search(word, k=5)
            if path.name not in {h.source for h in hits}:
                out.problems.append(f"a search for '{word}' does not find '{path.name}'")
    SharedSystemClient.clear_system_cache()  # the next check of this path opens it afresh
    return out


def check_copy(store_path: Path, scratch: Path) -> Checked:
    """``check_store`` of a copy of the store as a crash left it (opening it may repair it: the copy is opened,
    so the next ingest meets what the crash left)."""
    if scratch.exists():
        shutil.rmtree(scratch)
    if store_path.exists():
        shutil.copytree(store_path, scratch)
    try:
        return check_store(scratch, {}, None, require_files=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_ingest(folder: Path, store: Path, log: Path, *, timeout: float = 300, extra: dict[str, str] | None = None
               ) -> tuple[int, float, dict[str, Any], str]:
    """A plain ``python ingest.py FOLDER --json`` (no tracing): exit code, seconds, the JSON report, the output."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, "ingest.py", str(folder), "--json"], cwd=ROOT,
                          env=child_env(store, extra=extra), capture_output=True, timeout=timeout)
    with log.open("ab") as out:
        out.write(done.stdout + done.stderr)
    try:
        report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        report = {}
    output = (done.stdout + done.stderr).decode("utf-8", "replace")
    return done.returncode, time.monotonic() - start, report, output


# -- the app --------------------------------------------------------------------------------------------

def start_app(base: Path, store: Path, uploads: Path, marks: Path, hold: str = "",
              extra: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``python app.py --port P`` traced, with its store and upload folder here; ready when /api answers."""
    from tests.servers.running import free_port

    port = free_port()
    env = child_env(store, uploads=uploads, hold=hold, extra=extra)
    proc = start_child("app.py", ["--port", str(port)], marks, env, base / "app.log")
    url = f"http://127.0.0.1:{port}"
    wait_ready(proc, url, base / "app.log")
    return proc, url


def wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url + "/api/documents", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError("app not ready")


def post(url: str, paths: list[Path], timeout: float = 600) -> dict:
    import httpx

    files = [("files", (p.name, p.read_bytes(), "application/pdf")) for p in paths]
    response = httpx.post(url + "/api/documents", files=files, timeout=timeout)
    response.raise_for_status()
    return response.json()


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def upload_files(uploads: Path) -> list[Path]:
    return sorted(p for p in uploads.iterdir() if p.is_file() and not p.name.startswith(".")) \
        if uploads.exists() else []


if __name__ == "__main__":
    _child_main(sys.argv[1:])
