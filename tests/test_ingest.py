import shutil

import pytest

from rag import Rag
from rag.config import load_config
from rag.errors import DocumentNotFoundError, EmbeddingMismatchError
from rag.providers.embeddings import MINILM, local_model_path
from tests.conftest import ZORBLAX
from tests.pdfs import write_pdf


def chunk_ids(rag: Rag, source: str) -> set[str]:
    return set(rag.store._chunk_ids(source))


def test_folder_ingest_records_pages_chunks_and_metadata(make_rag, corpus):
    rag = make_rag()
    report = rag.ingestor.ingest([corpus])
    assert sorted(report.added) == ["zorblax-review.pdf", "누리별 항공 보고서.pdf"]
    assert report.failed == [] and report.skipped == [] and report.updated == []
    docs = {d.source: d for d in rag.store.documents()}
    assert docs["zorblax-review.pdf"].pages == 4
    assert docs["누리별 항공 보고서.pdf"].pages == 3
    assert len(docs["zorblax-review.pdf"].doc_id) == 64
    hits = rag.retriever.search("Quillon-7 reactor megawatts", k=1)
    assert (hits[0].source, hits[0].page) == ("zorblax-review.pdf", 3)
    assert rag.store.count() == sum(d.chunks for d in docs.values())


def test_reingest_is_idempotent_and_loads_no_model(make_rag, settings, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    before = {s: chunk_ids(rag, s) for s in ("zorblax-review.pdf", "누리별 항공 보고서.pdf")}

    fresh = Rag(settings)  # a new process would start like this: no model loaded yet
    report = fresh.ingestor.ingest([corpus])
    assert sorted(report.skipped) == ["zorblax-review.pdf", "누리별 항공 보고서.pdf"]
    assert report.added == [] and report.updated == []
    assert not fresh.embedder.built  # nothing to embed, so the embedding model never loaded
    assert {s: chunk_ids(fresh, s) for s in before} == before


def test_changed_file_replaces_all_its_chunks(make_rag, tmp_path):
    rag = make_rag()
    path = write_pdf(tmp_path / "docs" / "report.pdf", ZORBLAX)
    rag.ingestor.ingest([path])
    old_ids = chunk_ids(rag, "report.pdf")
    old_doc = rag.store.document("report.pdf")

    write_pdf(path, ["Completely new content about the Sorvane bridge, opened in 2021."])
    report = rag.ingestor.ingest([path])
    assert report.updated == ["report.pdf"]
    new_ids = chunk_ids(rag, "report.pdf")
    assert new_ids and not (new_ids & old_ids)
    assert rag.store.document("report.pdf").doc_id != old_doc.doc_id
    assert rag.store.document("report.pdf").pages == 1
    assert rag.store.count() == len(new_ids)
    assert all(h.page == 1 for h in rag.retriever.search("Quillon reactor", k=5))


def test_chunk_ids_are_deterministic(make_rag, settings, tmp_path, corpus):
    first = make_rag()
    first.ingestor.ingest([corpus / "zorblax-review.pdf"])
    other = load_config(environ={"RAG_STORE__PATH": str(tmp_path / "other")})
    second = Rag(other, embedder=first.embedder())
    second.ingestor.ingest([corpus / "zorblax-review.pdf"])
    assert chunk_ids(first, "zorblax-review.pdf") == chunk_ids(second, "zorblax-review.pdf")


def test_bad_files_are_reported_and_the_rest_ingested(make_rag, tmp_path, corpus):
    folder = tmp_path / "mixed"
    shutil.copytree(corpus, folder)
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "page.pdf").write_text("<html><body>Not a PDF</body></html>")
    (folder / "sub").mkdir()
    good = (corpus / "zorblax-review.pdf").read_bytes()
    (folder / "sub" / "truncated.pdf").write_bytes(good[: len(good) // 3])
    rag = make_rag()
    report = rag.ingestor.ingest([folder, tmp_path / "missing.pdf"])
    failed = {f.file: f.reason for f in report.failed}
    assert set(failed) == {"empty.pdf", "page.pdf", "truncated.pdf", str(tmp_path / "missing.pdf")}
    assert "empty" in failed["empty.pdf"] and "HTML" in failed["page.pdf"] and "damaged" in failed["truncated.pdf"]
    assert sorted(report.added) == ["zorblax-review.pdf", "누리별 항공 보고서.pdf"]
    assert {d.source for d in rag.store.documents()} == set(report.added)


def test_failed_update_keeps_the_previous_version(make_rag, tmp_path):
    rag = make_rag()
    path = write_pdf(tmp_path / "report.pdf", ZORBLAX)
    rag.ingestor.ingest([path])
    before = (rag.store.document("report.pdf"), chunk_ids(rag, "report.pdf"))
    path.write_bytes(path.read_bytes()[:500])  # the new version is broken
    report = rag.ingestor.ingest([path])
    assert [f.file for f in report.failed] == ["report.pdf"]
    assert (rag.store.document("report.pdf"), chunk_ids(rag, "report.pdf")) == before
    assert rag.retriever.search("Quillon-7 reactor", k=1)[0].page == 3


def test_delete_removes_document_and_chunks(make_rag, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    rag.store.delete("zorblax-review.pdf")
    assert [d.source for d in rag.store.documents()] == ["누리별 항공 보고서.pdf"]
    assert chunk_ids(rag, "zorblax-review.pdf") == set()
    assert all(h.source != "zorblax-review.pdf" for h in rag.retriever.search("reactor", k=10))
    with pytest.raises(DocumentNotFoundError):
        rag.store.delete("zorblax-review.pdf")


def test_search_can_be_limited_to_chosen_documents(make_rag, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus])
    hits = rag.retriever.search("reactor megawatts", k=5, sources=["누리별 항공 보고서.pdf"])
    assert hits and {h.source for h in hits} == {"누리별 항공 보고서.pdf"}
    assert rag.retriever.search("reactor", k=5, sources=[]) == []


def test_other_embedding_model_is_refused_with_a_fix(make_rag, settings, tmp_path, corpus):
    rag = make_rag()
    rag.ingestor.ingest([corpus / "zorblax-review.pdf"])
    # MiniLM's folder under another name: a different model (the store was made with multilingual-e5-small).
    _, bundled = local_model_path(MINILM)
    other_model = shutil.copytree(bundled, tmp_path / "my-other-model")
    other = load_config(environ={"RAG_STORE__PATH": str(settings.store.path),
                                 "RAG_EMBEDDINGS__MODEL": str(other_model)})
    switched = Rag(other)
    with pytest.raises(EmbeddingMismatchError) as err:
        switched.ingestor.ingest([corpus / "누리별 항공 보고서.pdf"])
    assert "multilingual-e5-small" in str(err.value) and "my-other-model" in str(err.value)
    assert "RAG_STORE__COLLECTION" in err.value.hint
    with pytest.raises(EmbeddingMismatchError):
        switched.retriever.search("reactor")
    assert [d.source for d in switched.store.documents()] == ["zorblax-review.pdf"]
