"""Crash safety of ingest, with real processes and ``kill -9``.

    .venv/bin/python bench/crash.py --trials 20 --seed 0 [--app-trials 3] [--out bench/results/crash.md]

Ingest trials: a fresh store and a folder of real PDFs (5 English, 1 to 4 pages, and one Korean; written once by
``tests.pdfs.write_pdf``); ``python ingest.py FOLDER`` runs traced (``python -m tests.crashes``: each phase marks
its entry and exit in a file, nothing else changes) and is killed with SIGKILL:

- ``random``: at a uniformly random time from 0.3 s to 80% of a measured full ingest (50% for a re-ingest);
- ``sign``: when the child marks the start of a phase (parse, embed, the Chroma upsert, the manifest write,
  the keyword-index write), after a random delay within that phase's measured length;
- ``hold``: the child stops at a point inside a phase (``tests/crashes.py``: mid-upsert, before the stale
  chunks' delete, before the manifest's rename, between the keyword index's two renames) and is killed there.

Re-ingest trials do the same after a complete ingest, with three files rewritten and one deleted; in the
``+revert`` ones the rewritten files are put back to their first version after the kill (a user's undo). The phase of
each kill is the innermost phase the child had marked open at the kill. Then a plain ``python ingest.py FOLDER``
(must exit 0) and the checks of ``tests.crashes.check_store``.

App trials: ``python app.py`` (traced, store and upload folder in temp dirs), files POSTed to /api/documents,
the app killed mid-upload; the store as left is checked, the app restarted, the files uploaded again, the app
stopped, and everything checked (upload folder included).

Embeddings: all-MiniLM-L6-v2 (``RAG_EMBEDDINGS__MODEL``), the faster bundled model, so that 20 trials fit in
about 15 minutes on the shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import offline_defaults  # noqa: E402

offline_defaults()

from tests import crashes  # noqa: E402
from tests.crashes import (  # noqa: E402
    check_store,
    child_env,
    kill9,
    phase_at,
    post,
    read_marks,
    start_app,
    start_child,
    stop_app,
    upload_files,
    wait_for_mark,
)

MODEL = {"RAG_EMBEDDINGS__MODEL": "all-MiniLM-L6-v2"}
PAGES = (1, 1, 2, 3, 4)
KOREAN_PAGES = 2
CHANGED = ["report-2-belthrix.pdf", "report-3-mandresk.pdf", "누리별 보고서.pdf"]  # rewritten for a re-ingest


@dataclass
class Trial:
    number: int
    kind: str  # random | sign:<phase> | hold:<point>
    reingest: bool
    kill_s: float = 0.0
    phase: str = ""
    left: str = ""  # the store as the crash left it
    rerun: str = ""
    rerun_s: float = 0.0
    problems: list[str] = field(default_factory=list)
    notes: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems and self.rerun.startswith("exit 0")


def plan(trials: int, rng: random.Random) -> list[tuple[str, bool]]:
    fresh = ["random"] * 5 + [f"sign:{p}" for p in ("file", "embed", "upsert", "manifest", "bm25")] + \
            [f"hold:{p}" for p in ("upsert", "manifest", "bm25")]
    again = ["random", "sign:upsert", "hold:delete", "hold:manifest", "hold:delete+revert", "hold:manifest+revert",
             "hold:bm25"]
    kinds = [(k, False) for k in fresh] + [(k, True) for k in again]
    while len(kinds) < trials:
        kinds.append((rng.choice(["random", "sign:embed", "sign:upsert"]), rng.random() < 0.5))
    return kinds[:trials]


def calibrate(work: Path, corpus: Path) -> tuple[float, dict[str, float]]:
    """One traced full ingest: its duration (from start to exit) and the mean length of each phase."""
    store, marks = work / "calibrate-store", work / "calibrate.marks"
    start = time.monotonic()
    proc = start_child("ingest.py", [str(corpus)], marks, child_env(store, extra=MODEL), work / "calibrate.log")
    proc.wait(timeout=600)
    total = time.monotonic() - start
    lengths: dict[str, list[float]] = {}
    opened: dict[str, float] = {}
    for sign, phase, t in read_marks(marks):
        if sign == "+":
            opened[phase] = t
        elif phase in opened:
            lengths.setdefault(phase, []).append(t - opened.pop(phase))
    return total, {p: sum(v) / len(v) for p, v in lengths.items()}


def copy_corpus(corpus: Path, folder: Path, reingest: bool, store: Path, log: Path, seed: int) -> dict[Path, str]:
    shutil.copytree(corpus, folder)
    words = {folder / name: word for name, word in json.loads((corpus.parent / "words.json").read_text()).items()}
    if reingest:
        code, _, _, _ = crashes.run_ingest(folder, store, log, extra=MODEL)
        assert code == 0, f"the first ingest failed: see {log}"
        scratch = folder.parent / "edition"
        new = crashes.write_corpus(scratch, seed=seed, pages=PAGES, korean_pages=KOREAN_PAGES, edition=1)
        for name in CHANGED:
            shutil.copyfile(scratch / name, folder / name)
        deleted = folder / sorted(new)[0]
        deleted.unlink()
        del words[deleted]
        shutil.rmtree(scratch)
    return words


def run_trial(trial: Trial, work: Path, corpus: Path, total: float, lengths: dict[str, float],
              rng: random.Random, embedder: object) -> Trial:
    base = work / f"trial-{trial.number:02d}"
    base.mkdir()
    store, folder, marks, log = base / "store", base / "docs", base / "marks", base / "log.txt"
    words = copy_corpus(corpus, folder, trial.reingest, store, log, trial.number)
    hold = trial.kind.split(":", 1)[1].removesuffix("+revert") if trial.kind.startswith("hold:") else ""
    start = time.monotonic()
    proc = start_child("ingest.py", [str(folder)], marks, child_env(store, hold=hold, extra=MODEL), log)
    when: float | None = None
    if trial.kind == "random":
        time.sleep(rng.uniform(0.3, total * (0.5 if trial.reingest else 0.8)))
    elif trial.kind.startswith("sign:"):
        phase = trial.kind[5:]
        count = 2 if phase == "bm25" and not trial.reingest else 1  # a new store saves an empty index first
        if phase in ("embed", "upsert", "manifest", "file"):
            count = rng.randint(1, 3)
        seen = wait_for_mark(marks, phase, 600, proc, count=count)
        if seen is not None:
            time.sleep(rng.uniform(0, lengths.get(phase, 0.0)))
    else:
        seen = wait_for_mark(marks, f"hold:{hold}", 600, proc)
        if seen is None:
            trial.notes = "hold point never reached"
    if proc.poll() is None:
        when = time.monotonic()
        kill9(proc)  # then the parse workers it left, if any
        trial.kill_s = when - start
        trial.phase = phase_at(read_marks(marks), when)
    else:
        trial.kill_s = time.monotonic() - start
        trial.phase = "finished before the kill"
    left = crashes.check_copy(store, base / "left")
    trial.left = "consistent" if left.ok else "; ".join(left.problems)
    if trial.kind.endswith("+revert"):  # the changed files put back to the version the manifest names
        for name in CHANGED:
            shutil.copyfile(corpus / name, folder / name)
    code, seconds, report, output = crashes.run_ingest(folder, store, log, extra=MODEL)
    trial.rerun_s = seconds
    counts = ", ".join(f"{len(report.get(k, []))} {k}" for k in ("added", "updated", "skipped", "failed")
                       if report.get(k))
    rebuilt = "keyword index rebuilt" if "rebuilding it from the stored chunks" in output else ""
    trial.rerun = f"exit {code}: {counts}" + (f"; {rebuilt}" if rebuilt else "")
    result = check_store(store, words, embedder, environ=MODEL)
    trial.problems = result.problems
    shutil.rmtree(base)
    return trial


# -- the app -------------------------------------------------------------------------------------------------

@dataclass
class AppTrial:
    number: int
    kind: str
    kill_s: float = 0.0
    phase: str = ""
    left_store: str = ""
    left_files: str = ""
    restart: str = ""
    reupload: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_app_trial(trial: AppTrial, work: Path, corpus: Path, words: dict[str, str], rng: random.Random,
                  embedder: object) -> AppTrial:
    base = work / f"app-{trial.number:02d}"
    base.mkdir()
    store, uploads, marks = base / "store", base / "uploads", base / "marks"
    files = sorted(corpus.glob("*.pdf"))
    hold = trial.kind.split(":", 1)[1] if trial.kind.startswith("hold:") else ""
    if trial.kind.startswith("update"):  # a first upload completes, then the updated files are uploaded
        proc, url = start_app(base, store, uploads, marks, extra=MODEL)
        post(url, files)
        stop_app(proc)
        scratch = base / "edition"
        crashes.write_corpus(scratch, seed=trial.number, pages=PAGES, korean_pages=KOREAN_PAGES, edition=1)
        files = sorted(scratch.glob("*.pdf"))
        hold = trial.kind.split(":", 1)[1] if ":" in trial.kind else ""
    proc, url = start_app(base, store, uploads, marks, hold=hold, extra=MODEL)
    thread = threading.Thread(target=lambda: _quiet_post(url, files), daemon=True)
    start = time.monotonic()
    thread.start()
    if hold:
        wait_for_mark(marks, f"hold:{hold}", 600, proc)
    else:
        wait_for_mark(marks, "embed", 600, proc, count=rng.randint(1, 4))
        time.sleep(rng.uniform(0, 1.0))
    when = time.monotonic()
    kill9(proc)
    trial.kill_s = when - start
    trial.phase = phase_at(read_marks(marks), when)
    left = crashes.check_copy(store, base / "left")
    trial.left_store = "consistent" if left.ok else "; ".join(left.problems)
    manifest = {d.source: d for d in _manifest(store).values()}
    orphans = [p.name for p in upload_files(uploads) if p.name not in manifest or
               manifest[p.name].doc_id != crashes.sha256(p)]
    dot = sorted(p.name.split("-", 1)[0] for p in uploads.iterdir() if p.name.startswith(".")
                 and p.name != ".previews") if uploads.exists() else []
    trial.left_files = (f"{len(orphans)} copies not (or not in this version) in the store" if orphans else
                        "every copy in the store") + (f"; left: {', '.join(dot)}" if dot else "")
    proc, url = start_app(base, store, uploads, marks, extra=MODEL)
    trial.restart = "ready"
    report = post(url, files)
    stop_app(proc)
    trial.reupload = ", ".join(f"{len(report.get(k, []))} {k}" for k in ("added", "updated", "skipped", "failed")
                               if report.get(k))
    if report.get("failed"):
        trial.problems.append(f"re-upload failed: {report['failed']}")
    by_name = {p.name: words[p.name] for p in files}
    current = {uploads / name: word for name, word in by_name.items()}
    result = check_store(store, current, embedder, environ=MODEL)
    trial.problems += result.problems
    stray = [p.name for p in upload_files(uploads) if p.name not in by_name]
    if stray:
        trial.problems.append(f"upload folder holds files never uploaded: {stray}")
    shutil.rmtree(base)
    return trial


def _quiet_post(url: str, files: list[Path]) -> None:
    try:
        post(url, files)
    except Exception:  # noqa: BLE001 - the app is killed mid-request
        pass


def _manifest(store: Path) -> dict:
    from rag.search.catalog import FileCatalog

    return FileCatalog(store / f"{crashes.COLLECTION}.manifest.json").load()


# -- the report ----------------------------------------------------------------------------------------------

def table(trials: list[Trial], apps: list[AppTrial], total: float, lengths: dict[str, float]) -> str:
    lines = ["| # | kill | run | at (s) | phase (from the child's marks) | store as left | re-run | checks |",
             "|---|---|---|---|---|---|---|---|"]
    for t in trials:
        lines.append(f"| {t.number} | {t.kind} | {'re-ingest' if t.reingest else 'fresh'} | {t.kill_s:.2f} | "
                     f"{t.phase} | {t.left} | {t.rerun} ({t.rerun_s:.0f} s) | "
                     f"{'all passed' if t.ok else '; '.join(t.problems) or 'FAILED'} |")
    phases: dict[str, list[bool]] = {}
    for t in trials:
        phases.setdefault(t.phase.replace(" (held)", ""), []).append(t.ok)
    lines += ["", f"Full traced ingest (calibration): {total:.1f} s; mean phase lengths: "
              + ", ".join(f"{p} {v * 1000:.1f} ms" for p, v in sorted(lengths.items())), "",
              "| phase hit | trials | consistent after the re-run |", "|---|---|---|"]
    for phase, oks in sorted(phases.items()):
        lines.append(f"| {phase} | {len(oks)} | {sum(oks)} |")
    if apps:
        lines += ["", "| # | app kill | at (s) | phase | store as left | upload folder as left | restart | "
                  "re-upload | checks |", "|---|---|---|---|---|---|---|---|---|"]
        for a in apps:
            lines.append(f"| {a.number} | {a.kind} | {a.kill_s:.2f} | {a.phase} | {a.left_store} | {a.left_files} | "
                         f"{a.restart} | {a.reupload} | {'all passed' if a.ok else '; '.join(a.problems)} |")
    ok = sum(t.ok for t in trials)
    lines += ["", f"**{ok}/{len(trials)} ingest trials consistent after the re-run**"
              + (f"; **{sum(a.ok for a in apps)}/{len(apps)} app trials**" if apps else "") + "."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--app-trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    from rag.config import load_config
    from rag.providers import build_embedder

    embedder = build_embedder(load_config(environ=MODEL).embeddings)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rag-crash-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus" / "docs"
        words = crashes.write_corpus(corpus, seed=args.seed, pages=PAGES, korean_pages=KOREAN_PAGES)
        (corpus.parent / "words.json").write_text(json.dumps(words, ensure_ascii=False))
        total, lengths = calibrate(work, corpus)
        print(f"calibration: a full ingest takes {total:.1f} s", file=sys.stderr, flush=True)
        trials = []
        for number, (kind, reingest) in enumerate(plan(args.trials, rng), 1):
            trial = run_trial(Trial(number, kind, reingest), work, corpus, total, lengths, rng, embedder)
            print(f"trial {number}: {kind} {'re-ingest' if reingest else 'fresh'} killed at {trial.kill_s:.2f} s in "
                  f"{trial.phase}; {trial.rerun}; {'ok' if trial.ok else trial.problems}", file=sys.stderr, flush=True)
            trials.append(trial)
        apps = []
        for number, kind in enumerate(["hold:stage", "random", "update:upsert"][:args.app_trials], 1):
            trial = run_app_trial(AppTrial(number, kind), work, corpus, words, rng, embedder)
            print(f"app trial {number}: {kind} killed in {trial.phase}; {trial.left_files}; "
                  f"{'ok' if trial.ok else trial.problems}", file=sys.stderr, flush=True)
            apps.append(trial)
    text = table(trials, apps, total, lengths) + f"\n\nWall time: {time.monotonic() - started:.0f} s.\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0 if all(t.ok for t in trials) and all(a.ok for a in apps) else 1


if __name__ == "__main__":
    sys.exit(main())
