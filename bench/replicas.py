"""Two app replicas + one watching ingest worker on one Chroma server: issue 13's end-to-end target.

    .venv/bin/python bench/replicas.py [--ops 50] [--seed 0] [--timeout 60] [--json FILE] [--keep]

Exit code 0 when nothing was lost, duplicated or extra, every operation reached both replicas in time and the
replicas agreed on every search; 1 otherwise. ``--keep`` keeps the temp folder (the processes' logs).

Real processes only: ``chroma run`` on a free 127.0.0.1 port (data in a temp folder), two ``python app.py --port P``
replicas with ``RAG_STORE__URL`` set to it (each its own ``RAG_STORE__PATH``, one shared ``RAG_APP__UPLOAD_DIR``,
``RAG_API_TOKEN`` set) and one ``python ingest.py --watch FOLDER`` worker on the same server; offline default
models. Replicas are ready when GET /api/documents answers, the worker when it prints "watching"; each replica
loads its embedding model with one search, and the worker with one warm-up file (added, then removed) before the
clock starts.

Then a seeded script of ``--ops`` operations, one at a time:

- ``add``: a new PDF (tests/pdfs.write_pdf; about a third Korean, with a Korean file name) is moved into the
  watched folder (written elsewhere, then renamed in, as a finished copy appears);
- ``delete``: a file is removed from the watched folder (the watcher deletes documents whose files disappear);
- ``upload``: a new PDF is uploaded through replica 1's POST /api/documents;
- ``delete-upload``: an uploaded document is deleted through replica 2's DELETE /api/documents/{doc_id}.

Every PDF carries one unique made-up word (Latin or Hangul) on one page. After each operation both replicas'
GET /api/documents are polled until each lists exactly the expected documents (source and doc_id); the time from
the operation's start to that moment is its propagation time on that replica (``--timeout`` s at most).

At the end: lost / duplicated / extra documents on each replica; the server's chunks against the catalog (every
document's chunk count, no chunks of documents not listed); for every live document, a search for its word on both
replicas in hybrid (the default), bm25 and vector modes (first hit its document and page?), and for those queries
and 10 generic ones in each mode, whether both replicas return the same hits (source, page, text, in order; scores
to 1e-4). Then each process's RSS (with its child processes) and a clean stop (SIGTERM, by PID).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.proc import rss_mb, tree_rss_mb  # noqa: E402
from tests.pdfs import write_pdf  # noqa: E402
from tests.servers.running import free_port  # noqa: E402

TOKEN = "bench-replicas-token"
MODES = ("hybrid", "bm25", "vector")
K = 10

EN_SYLLABLES = ["zor", "vex", "qua", "lin", "dra", "mon", "tek", "pli", "gan", "bru", "fex", "nim", "tal", "ork",
                "yur", "kel", "vap", "dun", "mir", "tox", "wen", "jab", "rul", "pex"]
KO_SYLLABLES = ["퀸", "톨", "뮤", "쟈", "펠", "롭", "킵", "셰", "뒨", "벨", "츄", "녹", "핀", "삭", "뭉", "퓨", "잭",
                "횰", "캅", "늡", "튠", "꾐", "랖", "쵸"]
EN_SENTENCES = [
    "The harbour handled more container ships this spring than in any earlier season.",
    "Rainfall in the northern valley was well below the ten-year average.",
    "The bakery's revenue grew by twelve percent after it opened a second shop.",
    "Railway maintenance crews replaced four kilometres of track over the winter.",
    "The city library now stays open until nine in the evening on weekdays.",
    "Solar panels on the school roof supply most of its electricity in summer.",
    "The orchestra rehearses twice a week in the old concert hall.",
    "Wheat prices fell after a record harvest in the southern provinces.",
    "The hospital added thirty beds to its emergency department.",
    "A new bus line connects the airport with the central station every fifteen minutes.",
    "The museum's annual report lists the exhibitions and visitor numbers for the year.",
    "Water quality in the lake improved once the treatment plant was upgraded.",
    "The software team shipped the release after fixing the last security issue.",
    "Fishing quotas for cod were cut to let the stocks recover.",
    "The council approved a budget for repairing the bridge over the river.",
    "Electric bicycles can be rented at twenty stations around the old town.",
]
KO_SENTENCES = [
    "올해 딸기 생산량은 지난해보다 크게 늘었다.",
    "항공사의 탑승객 수가 여름 성수기에 최고치를 기록했다.",
    "시립 도서관은 평일 저녁 아홉 시까지 문을 연다.",
    "새 버스 노선이 공항과 중앙역을 십오 분마다 잇는다.",
    "지난겨울 철도 정비 작업으로 선로 사 킬로미터가 교체되었다.",
    "학교 옥상의 태양광 패널이 여름철 전기 대부분을 공급한다.",
    "호수의 수질은 정수장 개선 이후 좋아졌다.",
    "병원은 응급실 병상을 서른 개 늘렸다.",
    "시의회는 강 위 다리 보수 예산을 승인했다.",
    "박물관 연례 보고서에는 전시와 관람객 수가 정리되어 있다.",
    "남부 지방의 밀 수확량이 사상 최대를 기록했다.",
    "소프트웨어 팀은 마지막 보안 문제를 고친 뒤 새 버전을 배포했다.",
]
GENERIC = [
    "container ships in the harbour", "rainfall below average", "bakery revenue growth", "railway track maintenance",
    "library opening hours", "solar panels electricity", "bus line to the airport", "딸기 생산량", "항공 탑승객 수",
    "다리 보수 예산",
]


# -- documents ----------------------------------------------------------------------------------------------

class Maker:
    """Seeded PDFs, each with one unique word on one page."""

    def __init__(self, rng: random.Random, staging: Path) -> None:
        self.rng, self.staging, self.used, self.n = rng, staging, set(), 0

    def word(self, korean: bool) -> str:
        while True:
            if korean:
                word = "".join(self.rng.sample(KO_SYLLABLES, 4))
            else:
                word = "".join(self.rng.sample(EN_SYLLABLES, 3)).capitalize()
            if word not in self.used:
                self.used.add(word)
                return word

    def make(self, prefix: str) -> dict[str, Any]:
        self.n += 1
        korean = self.rng.random() < 0.35
        word = self.word(korean)
        pool = KO_SENTENCES if korean else EN_SENTENCES
        pages = []
        for _ in range(self.rng.randint(1, 3)):
            pages.append(self.rng.sample(pool, self.rng.randint(3, 5)))
        page = self.rng.randrange(len(pages))
        line = f"{word} 사업은 이 쪽에서 자세히 설명한다." if korean else f"The {word} programme is described on this page."
        pages[page].insert(self.rng.randint(0, len(pages[page])), line)
        name = (f"{'문서' if prefix == 'doc' else '업로드'}-{self.n:03d}.pdf" if korean
                else f"{prefix}-{self.n:03d}-{word.lower()}.pdf")
        path = write_pdf(self.staging / name, [" ".join(p) for p in pages])
        return {"name": name, "path": path, "word": word, "page": page + 1, "korean": korean,
                "doc_id": hashlib.sha256(path.read_bytes()).hexdigest(), "pages": len(pages)}


# -- processes ------------------------------------------------------------------------------------------------

class Proc:
    def __init__(self, name: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.name, self.log_path = name, log
        self._log = open(log, "wb")  # closed in stop()
        self.popen = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def rss_mb(self) -> dict[str, float]:
        own = rss_mb(self.pid)
        children = max(0.0, tree_rss_mb(self.pid) - own)
        return {"rss_mb": round(own, 1), "children_rss_mb": round(children, 1)}

    def stop(self, timeout: float = 20) -> str:
        """SIGTERM to this PID, SIGKILL after ``timeout``. The watcher exits 0; uvicorn (the app) shuts down
        gracefully, then raises the captured SIGTERM again, so the app's exit code is -15."""
        killed = False
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                killed = True
                self.popen.kill()
                self.popen.wait()
        self._log.close()
        return f"{self.popen.returncode}" + (" (SIGKILL: no exit in time)" if killed else "")


def wait_for(check, what: str, timeout: float, procs: list[Proc]) -> float:
    started = time.monotonic()
    while True:
        for proc in procs:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}) while waiting for {what}:\n"
                                   f"{proc.log()[-3000:]}")
        try:
            if check():
                return time.monotonic() - started
        except requests.RequestException:
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not after {timeout} s")
        time.sleep(0.2)


# -- the replicas' HTTP API ---------------------------------------------------------------------------------

class Replica:
    def __init__(self, name: str, proc: Proc, port: int) -> None:
        self.name, self.proc, self.url = name, proc, f"http://127.0.0.1:{port}"
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {TOKEN}"

    def documents(self) -> list[dict[str, Any]]:
        reply = self.http.get(self.url + "/api/documents", timeout=30)
        reply.raise_for_status()
        return reply.json()

    def search(self, query: str, mode: str) -> list[dict[str, Any]]:
        reply = self.http.post(self.url + "/api/search", json={"query": query, "k": K, "mode": mode}, timeout=60)
        reply.raise_for_status()
        return reply.json()

    def upload(self, path: Path, name: str) -> dict[str, Any]:
        with path.open("rb") as file:
            reply = self.http.post(self.url + "/api/documents", files=[("files", (name, file, "application/pdf"))],
                                   timeout=300)
        reply.raise_for_status()
        return reply.json()

    def delete(self, doc_id: str) -> dict[str, Any]:
        reply = self.http.delete(f"{self.url}/api/documents/{doc_id}", timeout=120)
        reply.raise_for_status()
        return reply.json()


def listed(docs: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((d["source"], d["doc_id"]) for d in docs)


def difference(docs: list[dict[str, Any]], expected: dict[str, str]) -> dict[str, list]:
    got = listed(docs)
    sources = Counter(s for s, _ in got)
    ids = Counter(i for _, i in got)
    want = set(expected.items())
    return {"lost": sorted(s for s, i in want if (s, i) not in got),
            "extra": sorted(s for s, i in set(got) if (s, i) not in want),
            "duplicated": sorted({s for s, n in sources.items() if n > 1} | {s for s, i in got if ids[i] > 1})}


# -- the run --------------------------------------------------------------------------------------------------

def plan(ops: int, rng: random.Random) -> list[str]:
    """The kinds of operation, decided as the script goes (a delete needs something to delete): mostly adds and
    deletes in the watched folder, about one in ten an upload through replica 1, and deletes of uploads through
    replica 2; at least one upload and one delete-upload when ops >= 4."""
    kinds, watched, uploaded = [], 0, 0
    for i in range(ops):
        if ops >= 4 and i == ops // 3:
            kind = "upload"
        elif ops >= 4 and i == (2 * ops) // 3 and uploaded:
            kind = "delete-upload"
        else:
            r = rng.random()
            if r < 0.10:
                kind = "upload"
            elif r < 0.18 and uploaded:
                kind = "delete-upload"
            elif r < 0.48 and watched:
                kind = "delete"
            else:
                kind = "add"
        watched += {"add": 1, "delete": -1}.get(kind, 0)
        uploaded += {"upload": 1, "delete-upload": -1}.get(kind, 0)
        kinds.append(kind)
    return kinds


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    q = statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else [values[0]] * 99
    return {"p50_s": round(q[49], 2), "p95_s": round(q[94], 2), "max_s": round(max(values), 2), "n": len(values)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    clock = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    watched, staging, uploads = work / "watched", work / "staging", work / "uploads"
    for folder in (watched, staging, uploads):
        folder.mkdir()
    maker = Maker(rng, staging)
    results: dict[str, Any] = {"ops": args.ops, "seed": args.seed, "work": str(work)}

    base = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "PYTHONUNBUFFERED": "1", "RAG_API_TOKEN": TOKEN,
            "RAG_APP__UPLOAD_DIR": str(uploads)}
    base.pop("RAG_STORE__URL", None)
    procs: list[Proc] = []
    try:
        chroma_port = free_port()
        chroma = Proc("chroma", [str(Path(sys.executable).with_name("chroma")), "run", "--path", str(work / "chroma"),
                                 "--host", "127.0.0.1", "--port", str(chroma_port)], work / "chroma.log", base)
        procs.append(chroma)
        url = f"http://127.0.0.1:{chroma_port}"
        wait_for(lambda: requests.get(url + "/api/v2/heartbeat", timeout=2).ok, "chroma heartbeat", 90, [chroma])
        env = {**base, "RAG_STORE__URL": url}

        replicas = []
        launched = time.monotonic()
        for n in (1, 2):
            port = free_port()
            proc = Proc(f"replica-{n}", [sys.executable, "app.py", "--port", str(port)], work / f"replica-{n}.log",
                        {**env, "RAG_STORE__PATH": str(work / f"replica-{n}-local")})
            procs.append(proc)
            replicas.append(Replica(f"replica {n}", proc, port))
        worker = Proc("worker", [sys.executable, "ingest.py", "--watch", str(watched)], work / "worker.log",
                      {**env, "RAG_STORE__PATH": str(work / "worker-local")})
        procs.append(worker)
        started = {}  # seconds from launching the three processes (together) to each answering
        for r in replicas:
            wait_for(lambda r=r: r.documents() == [], f"{r.name} GET /api/documents", 600, procs)
            started[r.name] = round(time.monotonic() - launched, 1)
        wait_for(lambda: "watching " in worker.log(), "worker 'watching'", 600, procs)
        started["worker"] = round(time.monotonic() - launched, 1)

        expected: dict[str, str] = {}  # source -> doc_id
        live: dict[str, dict[str, Any]] = {}  # source -> the document made for it (with "via")

        def settle(label: str, since: float) -> dict[str, Any]:
            seen: dict[str, float] = {}
            last: dict[str, Any] = {}
            while len(seen) < len(replicas):
                for r in replicas:
                    if r.name in seen:
                        continue
                    docs = r.documents()
                    if listed(docs) == sorted(expected.items()):
                        seen[r.name] = time.monotonic() - since
                    else:
                        last[r.name] = difference(docs, expected)
                if time.monotonic() - since > args.timeout:
                    return {"timeout": True, "seen_s": seen,
                            "diff": {k: v for k, v in last.items() if k not in seen}}
                for proc in procs:
                    if not proc.alive():
                        raise RuntimeError(f"{proc.name} exited during {label}:\n{proc.log()[-3000:]}")
                time.sleep(0.05)
            return {"timeout": False, "seen_s": seen}

        # Warm-up: the worker loads its model on its first file (not counted in the operations).
        doc = maker.make("warmup")
        t = time.monotonic()
        os.replace(doc["path"], watched / doc["name"])
        expected[doc["name"]] = doc["doc_id"]
        warm = settle("warm-up add", t)
        for r in replicas:  # loads the replica's embedding model (a search of an empty store does not)
            t = time.monotonic()
            r.search("warm up", "hybrid")
            started[f"{r.name} first search"] = round(time.monotonic() - t, 1)
        results["ready_s"] = started
        print(f"ready: {json.dumps(started, ensure_ascii=False)}", flush=True)
        (watched / doc["name"]).unlink()
        del expected[doc["name"]]
        t2 = time.monotonic()
        warm_del = settle("warm-up delete", t2)
        results["warmup"] = {"add": warm, "delete": warm_del}
        print(f"warm-up: {json.dumps(results['warmup'])}", flush=True)

        ops: list[dict[str, Any]] = []
        kinds_rng = random.Random(args.seed + 1)
        run_started = time.monotonic()
        for i, kind in enumerate(plan(args.ops, kinds_rng)):
            record: dict[str, Any] = {"i": i + 1, "kind": kind, "t": round(time.monotonic() - run_started, 1)}
            if kind == "add":
                doc = maker.make("doc")
                t = time.monotonic()
                os.replace(doc["path"], watched / doc["name"])
                expected[doc["name"]] = doc["doc_id"]
                live[doc["name"]] = {**doc, "via": "watched"}
                record["source"], record["korean"] = doc["name"], doc["korean"]
            elif kind == "delete":
                source = rng.choice(sorted(s for s, d in live.items() if d["via"] == "watched"))
                t = time.monotonic()
                (watched / source).unlink()
                del expected[source], live[source]
                record["source"] = source
            elif kind == "upload":
                doc = maker.make("upload")
                t = time.monotonic()
                reply = replicas[0].upload(doc["path"], doc["name"])
                record["reply"] = reply
                record["request_s"] = round(time.monotonic() - t, 2)
                source = (reply.get("added") or [doc["name"]])[0]
                if reply.get("added") != [source] or reply.get("failed"):
                    record["unexpected_reply"] = True
                expected[source] = doc["doc_id"]
                live[source] = {**doc, "name": source, "via": "upload"}
                record["source"], record["korean"] = source, doc["korean"]
                doc["path"].unlink()
            else:  # delete-upload
                source = rng.choice(sorted(s for s, d in live.items() if d["via"] == "upload"))
                t = time.monotonic()
                reply = replicas[1].delete(live[source]["doc_id"])
                record["request_s"] = round(time.monotonic() - t, 2)
                gone = [d["source"] for d in reply.get("deleted", [])]
                if gone != [source]:
                    record["unexpected_reply"] = reply
                copy = reply["deleted"][0].get("path") if reply.get("deleted") else ""
                record["upload_copy_removed"] = bool(copy) and not Path(copy).exists()
                del expected[source], live[source]
                record["source"] = source
            outcome = settle(f"op {i + 1} {kind}", t)
            record.update(outcome)
            record["seen_s"] = {k: round(v, 2) for k, v in outcome["seen_s"].items()}
            ops.append(record)
            print(f"op {i + 1:3d} {kind:13s} {record['source']:40s} "
                  + " ".join(f"{k}={v:.2f}s" for k, v in record["seen_s"].items())
                  + (f"  TIMEOUT {json.dumps(outcome['diff'], ensure_ascii=False)}" if outcome["timeout"] else ""),
                  flush=True)
        results["ops_s"] = round(time.monotonic() - run_started, 1)
        results["operations"] = ops
        results["op_counts"] = dict(Counter(o["kind"] for o in ops))
        results["timeouts"] = sum(o["timeout"] for o in ops)
        results["propagation"] = {
            r.name: {"all": percentiles([o["seen_s"][r.name] for o in ops if r.name in o["seen_s"]]),
                     **{kind: percentiles([o["seen_s"][r.name] for o in ops if o["kind"] == kind
                                           and r.name in o["seen_s"]]) for kind in results["op_counts"]}}
            for r in replicas}

        # -- final checks -------------------------------------------------------------------------------
        time.sleep(2)  # a few sync periods: nothing should change any more
        final = {r.name: difference(r.documents(), expected) for r in replicas}
        results["final_documents"] = {"expected": len(expected), **{
            name: {k: len(v) for k, v in d.items()} | {"names": d} for name, d in final.items()}}
        results["server"] = check_server(url, expected, replicas[0].documents())
        results["search"] = check_search(replicas, live)
        results["upload_dir_files"] = sorted(p.name for p in uploads.iterdir())
        results["upload_dir_expected"] = sorted(s for s, d in live.items() if d["via"] == "upload")
        results["watched_files"] = sorted(p.name for p in watched.iterdir())
        results["rss_mb"] = {p.name: p.rss_mb() for p in procs}
    finally:
        codes = {}
        for proc in reversed(procs):  # the worker and the replicas first, the Chroma server last
            codes[proc.name] = proc.stop()
        results["exit_codes"] = codes
        results["log_problems"] = {p.name: [line for line in p.log().splitlines()
                                            if "Traceback" in line or "ERROR" in line or "failed:" in line][:20]
                                   for p in procs}
        results["total_s"] = round(time.monotonic() - clock, 1)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return results


def check_server(url: str, expected: dict[str, str], docs: list[dict[str, Any]]) -> dict[str, Any]:
    """Straight from Chroma: every listed document has its catalog's number of chunks, no others exist."""
    import chromadb
    from chromadb.config import Settings

    host, port = url.removeprefix("http://").split(":")
    client = chromadb.HttpClient(host=host, port=int(port), settings=Settings(anonymized_telemetry=False))
    col = client.get_collection("documents")
    got = col.get(include=["metadatas"])
    per_doc = Counter(m["doc_id"] for m in got["metadatas"])
    catalog = client.get_collection("documents__documents").count()
    want = {d["doc_id"]: d["chunks"] for d in docs}
    return {"chunks": col.count(), "catalog_records": catalog, "catalog_chunks": sum(want.values()),
            "wrong_chunk_counts": {i: [per_doc.get(i, 0), n] for i, n in want.items() if per_doc.get(i, 0) != n},
            "orphan_doc_ids": sorted(set(per_doc) - set(want)),
            "duplicate_chunk_ids": len(got["ids"]) - len(set(got["ids"]))}


def check_search(replicas: list[Replica], live: dict[str, dict[str, Any]]) -> dict[str, Any]:
    first = {mode: {"right_doc": 0, "right_page": 0, "misses": []} for mode in MODES}
    disagreements: list[dict[str, Any]] = []
    compared = 0
    queries = [(d["word"], source, d["page"]) for source, d in sorted(live.items())]
    queries += [(q, None, None) for q in GENERIC]
    for query, source, page in queries:
        for mode in MODES:
            hits = [r.search(query, mode) for r in replicas]
            compared += 1
            keys = [[(h["source"], h["page"], h["text"]) for h in hs] for hs in hits]
            scores_differ = keys[0] == keys[1] and any(abs(a["score"] - b["score"]) > 1e-4
                                                       for a, b in zip(hits[0], hits[1]))
            if keys[0] != keys[1] or scores_differ:
                disagreements.append({"query": query, "mode": mode, "scores_only": scores_differ,
                                      **{r.name: [(h["source"], h["page"], h["score"]) for h in hs]
                                         for r, hs in zip(replicas, hits)}})
            if source is not None:
                top = hits[0][0] if hits[0] else None
                if top and top["source"] == source:
                    first[mode]["right_doc"] += 1
                    first[mode]["right_page"] += top["page"] == page
                else:
                    first[mode]["misses"].append({"query": query, "want": source,
                                                  "got": [(h["source"], h["page"]) for h in hits[0][:3]]})
    return {"word_queries": len(live), "generic_queries": len(GENERIC), "comparisons": compared,
            "first_hit": first, "disagreements": disagreements}


def markdown(res: dict[str, Any]) -> str:
    lines = [f"## Two replicas + one watching worker on one Chroma server ({res['ops']} operations, seed {res['seed']})",
             ""]
    counts = ", ".join(f"{n} {k}" for k, n in res["op_counts"].items())
    counts += f" ({sum(1 for o in res['operations'] if o.get('korean'))} of the new documents Korean)"
    lines += [f"- operations: {counts}; timeouts waiting for both replicas: {res['timeouts']}",
              f"- ready after (s): {json.dumps(res['ready_s'], ensure_ascii=False)}", ""]
    fd = res["final_documents"]
    lines += ["| replica | expected | lost | duplicated | extra |", "|---|---|---|---|---|"]
    for name in ("replica 1", "replica 2"):
        d = fd[name]
        lines.append(f"| {name} | {fd['expected']} | {d['lost']} | {d['duplicated']} | {d['extra']} |")
    s = res["server"]
    lines += ["", f"- server: {s['chunks']} chunks, catalog {s['catalog_records']} records / {s['catalog_chunks']} "
              f"chunks; wrong chunk counts {len(s['wrong_chunk_counts'])}, orphan documents "
              f"{len(s['orphan_doc_ids'])}, duplicate chunk ids {s['duplicate_chunk_ids']}", ""]
    lines += ["| propagation (from the operation's start) | p50 s | p95 s | max s | n |", "|---|---|---|---|---|"]
    for name, per in res["propagation"].items():
        for kind, p in per.items():
            if p:
                lines.append(f"| {name}, {kind} | {p['p50_s']} | {p['p95_s']} | {p['max_s']} | {p['n']} |")
    se = res["search"]
    lines += ["", f"- searches compared between the replicas: {se['comparisons']} ({se['word_queries']} unique words "
              f"+ {se['generic_queries']} generic queries, x 3 modes, k={K}); disagreements: {len(se['disagreements'])}"]
    for mode, f in se["first_hit"].items():
        lines.append(f"- unique word, {mode}: its document first {f['right_doc']}/{se['word_queries']} "
                     f"(right page {f['right_page']})")
    for mode, f in se["first_hit"].items():
        for miss in f["misses"][:8]:
            lines.append(f"  - {mode} miss: {json.dumps(miss, ensure_ascii=False)}")
    for d in se["disagreements"][:5]:
        lines.append(f"- disagreement: {json.dumps(d, ensure_ascii=False)[:600]}")
    lines += ["", "| process | RSS MB | children MB | exit code after SIGTERM |", "|---|---|---|---|"]
    for name, rss in res["rss_mb"].items():
        lines.append(f"| {name} | {rss['rss_mb']:.0f} | {rss['children_rss_mb']:.0f} | {res['exit_codes'].get(name)} |")
    lines += ["", f"- operations took {res['ops_s']} s; whole run (start-up and stop included) {res['total_s']} s"]
    problems = {k: v for k, v in res["log_problems"].items() if v}
    if problems:
        lines.append(f"- log lines with errors: {json.dumps(problems, ensure_ascii=False)[:2000]}")
    if res["upload_dir_files"] != res["upload_dir_expected"]:
        lines.append(f"- upload dir holds {res['upload_dir_files']}, expected {res['upload_dir_expected']}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ops", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds an operation may take to show up")
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, server data)")
    args = parser.parse_args()
    results = run(args)
    print(markdown(results), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    fd = results.get("final_documents", {})
    bad = results.get("timeouts", 1) or any(fd[n][k] for n in ("replica 1", "replica 2")
                                            for k in ("lost", "duplicated", "extra")) \
        or results["search"]["disagreements"]
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
