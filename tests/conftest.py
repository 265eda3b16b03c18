"""Shared fixtures: real PDFs made here, the real embedding model and the real llama.cpp model, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag import offline_defaults

offline_defaults()

from rag import Rag  # noqa: E402
from rag.config import Settings, load_config  # noqa: E402
from rag.providers import ChatModel, Embedder, build_chat_model, build_embedder  # noqa: E402
from tests.pdfs import write_pdf  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["tests.servers.fixtures"]  # loopback OpenAI / Azure / Ollama / llama.cpp test servers

# A made-up fact on a known page: no model can know it, so a right answer must come from the document.
ZORBLAX = [
    "Zorblax Dynamics - Technical Review 2023\n\nThis review describes the company's plants, people and plans. "
    "Zorblax Dynamics was founded in 1998 in the town of Orlen Ridge.",
    "Staff and training\n\nThe company trained 312 apprentices in 2023. Safety training takes eleven days "
    "and is repeated every two years. The canteen serves lunch from noon.",
    "Power generation\n\nThe Quillon-7 reactor at Vessmark produces 418 megawatts. It was commissioned in 2017 "
    "and is cooled by water from Lake Thessaly.",
    "Future plans\n\nA second plant near Calloway Bay is planned for 2029, subject to permits. "
    "The board approved a research budget for battery storage.",
]
NURIBYEOL = [
    "누리별 항공 2023 지속가능경영 보고서\n\n누리별 항공은 2009년 제주에서 설립된 항공사이다.",
    "운항 실적\n\n누리별 항공의 2023년 탑승객 수는 740만 명으로 집계되었다. 정시 운항률은 91.3%였다.",
    "향후 계획\n\n2026년까지 친환경 항공기 12대를 새로 도입할 예정이다.",
]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with an English and a Korean PDF holding made-up facts on known pages."""
    folder = tmp_path_factory.mktemp("corpus")
    write_pdf(folder / "zorblax-review.pdf", ZORBLAX)
    write_pdf(folder / "누리별 항공 보고서.pdf", NURIBYEOL)
    return folder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return build_embedder(Settings().embeddings)


@pytest.fixture(scope="session")
def chat() -> ChatModel:
    return build_chat_model(Settings().llm)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_config(environ={"RAG_STORE__PATH": str(tmp_path / "store")})


@pytest.fixture
def make_rag(settings: Settings, embedder: Embedder, chat: ChatModel):
    """Build a Rag on a fresh store in tmp_path, sharing the session's loaded models."""

    def make(s: Settings | None = None) -> Rag:
        return Rag(s or settings, embedder=embedder, chat=chat)

    return make
