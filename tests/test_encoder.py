"""qabot.encoder against sentence-transformers itself: tiny BERT and XLM-RoBERTa models that
these tests build and save (no download), each computed both ways."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qabot.embedding import EmbedderError, SentenceTransformerEmbedder, create_embedder
from qabot.encoder import UnsupportedModel, open_plain

from .conftest import save_tiny_model, sentence_transformers_modules

TEXTS = [
    "Đảng ủy Khu kinh tế Hải Phòng có bao nhiêu đảng viên?",
    "đảng viên",
    "",
    "Bí thư Đảng ủy " * 60,  # longer than the model's 64 tokens: truncated
    "ban chấp hành công đoàn lao động; tăng 12,5% so với cùng kỳ",
    "Xyz qwv ???",  # unknown word pieces
]


def _save(folder: Path, model_type: str, pooling: str, extra=(), normalize=False) -> Path:
    name = f"{model_type}-{pooling}{'-dense' if extra else ''}"
    return save_tiny_model(folder / name, model_type, pooling, 4, extra, normalize)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("encoders")
    return {
        "bert-mean": _save(folder, "bert", "mean"),
        "bert-max": _save(folder, "bert", "max"),
        "xlm-roberta-cls": _save(folder, "xlm-roberta", "cls", normalize=True),
        "xlm-roberta-mean": _save(folder, "xlm-roberta", "mean"),
    }


def _reference(folder: Path, texts: list[str], batch_size: int = 32) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    return model.encode(texts, batch_size=batch_size, convert_to_numpy=True)


@pytest.mark.parametrize("name", ["bert-mean", "bert-max", "xlm-roberta-cls", "xlm-roberta-mean"])
def test_plain_encoders_compute_what_sentence_transformers_computes(models, name):
    expected = _reference(models[name], TEXTS)
    encoder = open_plain(models[name])
    assert encoder.dim == 32
    for batch_size in (1, 4, 32):  # padding inside a batch changes nothing
        got = encoder.encode(TEXTS, batch_size)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert np.abs(got - expected).max() < 2e-5, batch_size
    assert encoder.encode([]).shape == (0, 32)


def test_erf_is_accurate_to_a_few_float32_steps():
    import math

    from qabot.encoder import _erf

    x = np.linspace(-6, 6, 2001, dtype=np.float32)
    expected = np.array([math.erf(float(v)) for v in x])
    assert np.abs(_erf(x) - expected).max() < 5e-7  # 1.5e-7 and float32 rounding


def test_long_texts_are_encoded_in_smaller_batches_to_the_same_vectors(models, monkeypatch):
    from qabot import encoder as module

    expected = open_plain(models["bert-mean"]).encode(TEXTS, 32)
    # 4 heads x 64 x 64 tokens: room for one long text at a time.
    monkeypatch.setattr(module, "MAX_ATTENTION_SCORES", 4 * 64 * 64)
    got = open_plain(models["bert-mean"]).encode(TEXTS, 32)
    assert np.abs(got - expected).max() < 2e-5


def test_folders_written_by_older_sentence_transformers_are_read_alike(models, tmp_path):
    # sentence-transformers 2 wrote other config keys and module paths for the same model.
    legacy = tmp_path / "legacy"
    shutil.copytree(models["bert-mean"], legacy)
    (legacy / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 64, "do_lower_case": False})
    )
    (legacy / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": 32,
                "pooling_mode_cls_token": False,
                "pooling_mode_mean_tokens": True,
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
            }
        )
    )
    modules = json.loads((legacy / "modules.json").read_text())
    for module, kind in zip(modules, ("Transformer", "Pooling"), strict=True):
        module["type"] = f"sentence_transformers.models.{kind}"
    (legacy / "modules.json").write_text(json.dumps(modules))
    expected = _reference(models["bert-mean"], TEXTS)
    assert np.abs(open_plain(legacy).encode(TEXTS) - expected).max() < 2e-5
    # ... and a pooling sentence-transformers has but this module does not compute:
    pooling = json.loads((legacy / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_mean_sqrt_len_tokens=True)
    (legacy / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    with pytest.raises(UnsupportedModel, match="mean_sqrt_len_tokens"):
        open_plain(legacy)


def test_the_tokenizer_and_truncation_are_those_of_sentence_transformers(models):
    from sentence_transformers import SentenceTransformer

    for name in ("bert-mean", "xlm-roberta-cls"):
        reference = SentenceTransformer(str(models[name]), device="cpu")
        features = reference.tokenize(TEXTS)
        encodings = open_plain(models[name])._tokenizer.encode_batch(TEXTS)
        for i, encoding in enumerate(encodings):
            n = int(features["attention_mask"][i].sum())
            assert features["input_ids"][i][:n].tolist() == encoding.ids
        assert max(len(e.ids) for e in encodings) == 64  # the long text, cut at 64


def test_the_embedder_uses_numpy_for_a_plain_model_and_gives_the_same_vectors(tiny_model_dir):
    plain = SentenceTransformerEmbedder(str(tiny_model_dir))
    reference = SentenceTransformerEmbedder(str(tiny_model_dir), engine="sentence-transformers")
    assert plain.engine == "numpy" and reference.engine == "sentence-transformers"
    assert plain.id == reference.id and plain.dim == reference.dim == 32
    for embed in ("embed_queries", "embed_passages"):  # the E5 prefixes apply in both
        got, expected = getattr(plain, embed)(TEXTS), getattr(reference, embed)(TEXTS)
        assert np.abs(got - expected).max() < 2e-5
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_threads_embedding_at_once_get_what_one_thread_gets(models):
    # A server embeds questions in several request threads while an upload embeds passages.
    from concurrent.futures import ThreadPoolExecutor

    encoder = open_plain(models["xlm-roberta-mean"])
    expected = [encoder.encode([text]) for text in TEXTS] + [encoder.encode(TEXTS)]
    jobs = [[text] for text in TEXTS] * 10 + [TEXTS] * 10
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(encoder.encode, jobs))
    for i, got in enumerate(results):
        want = expected[i % len(TEXTS)] if i < 10 * len(TEXTS) else expected[-1]
        assert np.array_equal(got, want)


def test_a_command_embeds_a_plain_model_without_importing_torch(tiny_model_dir):
    # The point of the numpy engine: a short-lived command pays neither torch's import nor
    # sentence-transformers'.
    script = (
        "import sys\n"
        "from qabot.embedding import create_embedder\n"
        f"e = create_embedder('sentence-transformers:{tiny_model_dir}', lazy=True)\n"
        "v = e.embed_passages(['đảng viên mới'])\n"
        "print(v.shape, e.engine, sorted(m for m in ('torch', 'transformers',"
        " 'sentence_transformers') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "(1, 32) numpy []"


def test_other_models_fall_back_to_sentence_transformers(models, tmp_path):
    modules = sentence_transformers_modules()
    dense = _save(
        tmp_path,
        "bert",
        "mean",
        extra=[lambda parts: modules.Dense(32, 16)],
    )
    with pytest.raises(UnsupportedModel, match="Dense"):
        open_plain(dense)
    embedder = SentenceTransformerEmbedder(str(dense))
    assert embedder.engine == "sentence-transformers" and embedder.dim == 16
    with pytest.raises(EmbedderError, match=r"không tính được bằng numpy.*Dense"):
        SentenceTransformerEmbedder(str(dense), engine="numpy")

    # Half-precision weights: transformers would compute in float16, this module cannot.
    half = tmp_path / "half"
    shutil.copytree(models["bert-mean"], half)
    from safetensors.numpy import load_file, save_file

    weights = load_file(str(half / "model.safetensors"))
    save_file(
        {k: v.astype(np.float16) for k, v in weights.items()}, str(half / "model.safetensors")
    )
    with pytest.raises(UnsupportedModel, match="float32"):
        open_plain(half)

    # A default prompt sentence-transformers would add to every text.
    prompted = tmp_path / "prompted"
    shutil.copytree(models["bert-mean"], prompted)
    options = json.loads((prompted / "config_sentence_transformers.json").read_text())
    options.update(prompts={"query": "hỏi: "}, default_prompt_name="query")
    (prompted / "config_sentence_transformers.json").write_text(json.dumps(options))
    with pytest.raises(UnsupportedModel, match="default prompt"):
        open_plain(prompted)

    # A broken file is a reason, not a crash.
    broken = tmp_path / "broken"
    shutil.copytree(models["bert-mean"], broken)
    (broken / "config.json").write_text("{not json")
    with pytest.raises(UnsupportedModel, match="JSONDecodeError"):
        open_plain(broken)


def test_an_unknown_engine_is_a_clear_error(tiny_model_dir):
    with pytest.raises(EmbedderError, match="không có cách tính vector 'onnx'"):
        create_embedder(f"sentence-transformers:{tiny_model_dir}", engine="onnx")
