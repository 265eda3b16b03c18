"""Access with a login: every route that lists, serves, uploads or deletes documents refuses without it, the
API included (the page's login works there as HTTP Basic), and the file route serves nothing outside the
allowed folders, whatever the encoding of the path. The real app (page mounted on the API) on 127.0.0.1."""

from __future__ import annotations

import httpx
import pytest

from rag import Rag, load_config
from tests.pdfs import write_pdf
from tests.servers.running import ServerThread

USER, PASSWORD = "reader", "pw-5c1e9a"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, embedder, chat):
    from ui.app import asgi_app, launch_options

    folder = tmp_path_factory.mktemp("access")
    settings = load_config(environ={"RAG_STORE__PATH": str(folder / "store"),
                                    "RAG_APP__UPLOAD_DIR": str(folder / "uploads")})
    rag = Rag(settings, embedder=embedder, chat=chat)
    (folder / "secret.txt").write_text("outside the served folders", encoding="utf-8")
    pdf = write_pdf(folder / "in" / "plant.pdf", ["The Quillon reactor produces 418 megawatts."])
    report = rag.upload([(pdf, "plant.pdf")])
    assert report.added == ["plant.pdf"]
    options = launch_options(settings, environ={"RAG_APP_USER": USER, "RAG_APP_PASSWORD": PASSWORD})
    with ServerThread(asgi_app(rag, options, environ={})) as server:  # no RAG_API_TOKEN: the login guards the API
        server.folder = folder
        server.uploaded = settings.app.upload_dir / "plant.pdf"
        yield server


def test_every_document_route_refuses_without_the_login(app):
    doc_id = httpx.get(app.url + "/api/documents", auth=(USER, PASSWORD)).json()[0]["doc_id"]
    refused = [
        httpx.get(app.url + "/api/documents"),
        httpx.post(app.url + "/api/documents", files={"files": ("x.pdf", b"%PDF-1.4", "application/pdf")}),
        httpx.delete(app.url + f"/api/documents/{doc_id}"),
        httpx.post(app.url + "/api/search", json={"query": "reactor"}),
        httpx.post(app.url + "/api/ask", json={"question": "How much power?"}),
        httpx.post(app.url + "/v1/chat/completions", json={"model": "rag", "messages": [{"role": "user", "content": "hi"}]}),
        httpx.get(app.url + "/v1/models"),
        httpx.get(app.url + f"/gradio_api/file={app.uploaded}"),  # the uploaded PDF itself
        httpx.get(app.url + "/config"),
    ]
    assert [r.status_code for r in refused] == [401] * len(refused)
    assert refused[0].json()["error"]["message"] == "login required"
    wrong = httpx.get(app.url + "/api/documents", auth=(USER, "nope"))
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "wrong user name or password"
    # with the login, the API answers; the document is still there
    listed = httpx.get(app.url + "/api/documents", auth=(USER, PASSWORD))
    assert listed.status_code == 200 and [d["source"] for d in listed.json()] == ["plant.pdf"]
    hits = httpx.post(app.url + "/api/search", json={"query": "Quillon reactor"}, auth=(USER, PASSWORD)).json()
    assert hits[0]["source"] == "plant.pdf"


def test_the_file_route_serves_nothing_outside_the_allowed_folders(app):
    with httpx.Client(base_url=app.url) as client:
        login = client.post("/login", data={"username": USER, "password": PASSWORD})
        assert login.status_code == 200
        served = client.get(f"/gradio_api/file={app.uploaded}")
        assert served.status_code == 200 and served.content.startswith(b"%PDF")  # the allowed file, logged in
        outside = app.folder / "secret.txt"
        store = app.folder / "store"
        uploads = str(app.uploaded.parent)
        attempts = [
            f"/gradio_api/file={outside}",
            f"/gradio_api/file={uploads}/../secret.txt",
            f"/gradio_api/file={uploads}/..%2fsecret.txt",
            f"/gradio_api/file={uploads}/%2e%2e/secret.txt",
            f"/gradio_api/file={uploads}/%2e%2e%2fsecret.txt",
            f"/gradio_api/file={uploads}/..%252fsecret.txt",
            f"/gradio_api/file={uploads}/..%5csecret.txt",
            f"/gradio_api/file={uploads}/%00../secret.txt",
            f"/gradio_api/file={store}/documents.manifest.json",
            "/gradio_api/file=/etc/passwd",
            "/gradio_api/file=%2fetc%2fpasswd",
        ]
        for path in attempts:
            response = client.get(path)
            assert response.status_code >= 400, path
            assert b"outside the served folders" not in response.content and b"root:" not in response.content, path
