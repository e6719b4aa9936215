"""A plain sentence-transformers model folder run with numpy alone.

Why: importing torch, transformers and sentence-transformers takes 4-5 s and 300-400 MB before
the first text is embedded. A short-lived command (``qabot index add`` of one report, with a
model that embeds it in milliseconds) spent most of its time there, and so did every server
start. The models qabot is used with are mostly plain encoders: a BERT or (XLM-)RoBERTa
transformer, then mean, CLS or max pooling, perhaps a Normalize. For those the same float32
computation in numpy gives the same vectors (tests/test_encoder.py compares it with
sentence-transformers), with only ``tokenizers`` and ``safetensors`` to import.

``open_plain`` raises UnsupportedModel, saying why, for any folder it cannot run exactly as
sentence-transformers would (another architecture, a Dense layer, a default prompt, weights
only in a pickle, ...); qabot.embedding then uses sentence-transformers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
POOLING_MODES = ("mean", "cls", "max")
# transformers' "no limit" for a tokenizer that declares none (VERY_LARGE_INTEGER).
NO_LIMIT = int(1e30)
# Keys of sentence_bert_config.json with the values under which the module is the plain
# encoder computed here (sentence-transformers 6 writes these; older versions none of them).
PLAIN_SETTINGS = {
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}
EMPTY_SETTINGS = ("model_args", "tokenizer_args", "config_args", "processor_kwargs")
# A batch's attention scores (texts x heads x tokens x tokens float32) are held at once.
# Batches of long texts are split to keep them under this many (4 MB): an array the
# allocator hands back from fresh pages costs a page fault per 4 KB, and on a model of
# multilingual-e5-small's shape batches of 32 passages of ~160 tokens (68 MB of scores)
# embedded 9.7 passages a second against 14 with this bound (bench/encoder.py).
MAX_ATTENTION_SCORES = 1 << 20
# Abramowitz and Stegun 7.1.26: erf(x) = 1 - (a1 t + ... + a5 t^5) exp(-x^2), t = 1/(1 + p x).
ERF_COEFFICIENTS = (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)


class UnsupportedModel(Exception):
    """The folder is not a model this module computes exactly; the message says why."""


@dataclass(frozen=True)
class _Layer:
    # (weight transposed, bias): x @ weight + bias. Query, key and value in one product.
    qkv: tuple[np.ndarray, np.ndarray]
    attention_out: tuple[np.ndarray, np.ndarray]
    attention_norm: tuple[np.ndarray, np.ndarray]  # (scale, shift)
    intermediate: tuple[np.ndarray, np.ndarray]
    out: tuple[np.ndarray, np.ndarray]
    out_norm: tuple[np.ndarray, np.ndarray]


def _json(path: Path) -> dict:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UnsupportedModel(f"{path.name} is not a JSON object")
    return data


def _module_kind(entry: dict) -> str:
    return str(entry.get("type", "")).rsplit(".", 1)[-1]


# The numeric functions below work in place on their first argument where they can: on a
# batch of long passages an intermediate activation is tens of megabytes, and every
# temporary array is another pass over memory.


def _layer_norm(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis; overwrites x."""
    x -= x.mean(axis=-1, keepdims=True)
    variance = np.einsum("ij,ij->i", x, x)[:, None] / np.float32(x.shape[-1])
    x /= np.sqrt(variance + np.float32(eps))
    x *= scale
    x += shift
    return x


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to 1.5e-7 (Abramowitz and Stegun 7.1.26), a new array: numpy has none, and
    scipy's (slower than this on float32) would cost its import."""
    a = np.abs(x)
    t = np.multiply(a, np.float32(0.3275911))
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    poly = np.multiply(t, np.float32(ERF_COEFFICIENTS[0]))
    for coefficient in ERF_COEFFICIENTS[1:]:  # Horner, highest power first
        poly += np.float32(coefficient)
        poly *= t
    np.multiply(a, a, out=a)
    np.negative(a, out=a)
    np.exp(a, out=a)
    poly *= a
    np.subtract(np.float32(1.0), poly, out=poly)
    return np.copysign(poly, x, out=poly)


def _gelu(x: np.ndarray) -> np.ndarray:
    """The exact (erf) GELU, transformers' "gelu"; overwrites x."""
    factor = _erf(x * np.float32(1 / math.sqrt(2.0)))
    factor += np.float32(1.0)
    factor *= np.float32(0.5)
    x *= factor
    return x


def _softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis; overwrites scores."""
    scores -= scores.max(axis=-1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=-1, keepdims=True)
    return scores


class PlainEncoder:
    """A transformer encoder and its pooling, from a sentence-transformers folder."""

    def __init__(
        self,
        tokenizer,  # tokenizers.Tokenizer, truncation set, no padding
        weights: dict[str, np.ndarray],
        config: dict,
        pooling: str,
        pad_id: int,
        prompts: dict[str, str],
        normalize: bool = False,
    ) -> None:
        self._tokenizer = tokenizer
        self._pooling = pooling
        self._normalize = normalize
        self._pad_id = pad_id
        self.prompts = prompts
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        # RoBERTa-style embeddings count positions from the padding id + 1.
        self._position_offset = pad_id + 1 if config["model_type"] != "bert" else 0
        self._word = weights["embeddings.word_embeddings.weight"]
        self._position = weights["embeddings.position_embeddings.weight"]
        self._token_type = weights["embeddings.token_type_embeddings.weight"]
        self._embedding_norm = (
            weights["embeddings.LayerNorm.weight"],
            weights["embeddings.LayerNorm.bias"],
        )
        self._layers = [
            self._layer(weights, f"encoder.layer.{i}.")
            for i in range(int(config["num_hidden_layers"]))
        ]
        self.dim = int(self._word.shape[1])

    @staticmethod
    def _layer(weights: dict[str, np.ndarray], prefix: str) -> _Layer:
        def linear(name: str) -> tuple[np.ndarray, np.ndarray]:
            # Transposed once here, so that x @ weight needs no copy per call.
            return (
                np.ascontiguousarray(weights[prefix + name + ".weight"].T),
                weights[prefix + name + ".bias"],
            )

        def norm(name: str) -> tuple[np.ndarray, np.ndarray]:
            return weights[prefix + name + ".weight"], weights[prefix + name + ".bias"]

        weights_qkv = [linear(f"attention.self.{name}") for name in ("query", "key", "value")]
        return _Layer(
            qkv=(
                np.ascontiguousarray(np.concatenate([w for w, _ in weights_qkv], axis=1)),
                np.concatenate([b for _, b in weights_qkv]),
            ),
            attention_out=linear("attention.output.dense"),
            attention_norm=norm("attention.output.LayerNorm"),
            intermediate=linear("intermediate.dense"),
            out=linear("output.dense"),
            out_norm=norm("output.LayerNorm"),
        )

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """One vector per text, in the texts' order, as the model's modules give it (pooled,
        and normalised if it ends with Normalize). Texts are batched longest first, as
        sentence-transformers does, so a batch pads little."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        start = 0
        while start < len(order):
            width = len(encodings[order[start]].ids)  # the batch's longest
            fits = MAX_ATTENTION_SCORES // max(self._heads * width * width, 1)
            chosen = order[start : start + max(1, min(batch_size, fits))]
            out[chosen] = self._encode_batch([encodings[i] for i in chosen])
            start += len(chosen)
        if self._normalize:
            out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), np.float32(1e-12))
        return out

    def _encode_batch(self, encodings: list) -> np.ndarray:
        batch, width = len(encodings), max(len(e.ids) for e in encodings)
        ids = np.full((batch, width), self._pad_id, dtype=np.int64)
        types = np.zeros((batch, width), dtype=np.int64)
        mask = np.zeros((batch, width), dtype=np.float32)
        for i, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[i, :n] = encoding.ids
            types[i, :n] = encoding.type_ids
            mask[i, :n] = 1.0
        if self._position_offset:
            positions = (np.cumsum(mask, axis=1) * mask).astype(np.int64) + self._pad_id
        else:
            positions = np.broadcast_to(np.arange(width, dtype=np.int64), ids.shape)
        # Tokens are rows of one 2-D array, so that every projection is one matrix product.
        x = self._word[ids.ravel()]
        x += self._position[positions.ravel()]
        x += self._token_type[types.ravel()]
        x = _layer_norm(x, *self._embedding_norm, self._eps)
        # Padding keys get the lowest float, as transformers' attention mask does.
        key_bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]
        for layer in self._layers:
            x = self._layer_forward(layer, x, key_bias, batch, width)
        return self._pool(x.reshape(batch, width, -1), mask)

    def _layer_forward(
        self, layer: _Layer, x: np.ndarray, key_bias: np.ndarray, batch: int, width: int
    ) -> np.ndarray:
        hidden = x.shape[1]
        head = hidden // self._heads
        weight, bias = layer.qkv
        qkv = x @ weight
        qkv += bias
        # (tokens, 3 x hidden) -> 3 x (batch, heads, width, head)
        # (contiguous: a matrix product of strided views is several times slower)
        q, k, v = np.ascontiguousarray(
            qkv.reshape(batch, width, 3, self._heads, head).transpose(2, 0, 3, 1, 4)
        )
        scores = q @ k.transpose(0, 1, 3, 2)
        scores *= np.float32(head**-0.5)
        scores += key_bias
        context = _softmax(scores) @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch * width, hidden)
        weight, bias = layer.attention_out
        attended = context @ weight
        attended += bias
        attended += x
        x = _layer_norm(attended, *layer.attention_norm, self._eps)
        weight, bias = layer.intermediate
        inner = x @ weight
        inner += bias
        weight, bias = layer.out
        out = _gelu(inner) @ weight
        out += bias
        out += x
        return _layer_norm(out, *layer.out_norm, self._eps)

    def _pool(self, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self._pooling == "cls":
            return x[:, 0]
        if self._pooling == "max":
            return np.where(mask[:, :, None] > 0, x, -np.inf).max(axis=1).astype(np.float32)
        summed = (x * mask[:, :, None]).sum(axis=1)
        return summed / np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))


def open_plain(folder: Path) -> PlainEncoder:
    """The folder's model as a PlainEncoder; UnsupportedModel when it is not one this module
    computes exactly (or its files cannot be read)."""
    try:
        return _open(folder)
    except UnsupportedModel:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise UnsupportedModel(f"{type(exc).__name__}: {exc}") from None


def _open(folder: Path) -> PlainEncoder:
    modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    kinds = [_module_kind(m) for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise UnsupportedModel(f"modules {kinds}")
    transformer = folder / modules[0].get("path", "")
    settings = _json(transformer / "sentence_bert_config.json")
    for key, value in settings.items():
        if key in ("max_seq_length", "do_lower_case"):
            continue
        if key in EMPTY_SETTINGS and not value:
            continue
        if PLAIN_SETTINGS.get(key, object()) != value:
            raise UnsupportedModel(f"sentence_bert_config {key}={value!r}")

    config = _json(transformer / "config.json")
    if config.get("model_type") not in MODEL_TYPES:
        raise UnsupportedModel(f"model type {config.get('model_type')!r}")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise UnsupportedModel(f"position embeddings {config['position_embedding_type']!r}")
    if config.get("hidden_act", "gelu") != "gelu":
        raise UnsupportedModel(f"activation {config['hidden_act']!r}")
    if config.get("is_decoder") or config.get("add_cross_attention"):
        raise UnsupportedModel("a decoder")
    if int(config["hidden_size"]) % int(config["num_attention_heads"]):
        raise UnsupportedModel("hidden size not divisible by heads")

    pooling_config = _json(folder / modules[1].get("path", "") / "config.json")
    pooling = _pooling_mode(pooling_config)
    options = _json(folder / "config_sentence_transformers.json")
    if options.get("default_prompt_name"):
        raise UnsupportedModel("a default prompt")
    prompts = {str(k): str(v) for k, v in (options.get("prompts") or {}).items()}

    tokenizer, pad_id = _tokenizer(transformer, config, settings)
    weights = _weights(transformer / "model.safetensors")
    encoder = PlainEncoder(
        tokenizer, weights, config, pooling, pad_id, prompts, normalize=len(kinds) == 3
    )
    dimension = pooling_config.get(
        "embedding_dimension", pooling_config.get("word_embedding_dimension")
    )
    if dimension is not None and int(dimension) != encoder.dim:
        raise UnsupportedModel(f"pooling dimension {dimension} against {encoder.dim}")
    return encoder


def _pooling_mode(config: dict) -> str:
    mode = config.get("pooling_mode")
    if mode is None:  # older folders: one flag per mode
        legacy = {
            "pooling_mode_cls_token": "cls",
            "pooling_mode_max_tokens": "max",
            "pooling_mode_mean_tokens": "mean",
            "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
            "pooling_mode_weightedmean_tokens": "weightedmean",
            "pooling_mode_lasttoken": "lasttoken",
        }
        active = [name for key, name in legacy.items() if config.get(key)]
        mode = active[0] if len(active) == 1 else (active or "mean")
    if isinstance(mode, list) and len(mode) == 1:
        mode = mode[0]
    if mode not in POOLING_MODES:
        raise UnsupportedModel(f"pooling {mode!r}")
    return str(mode)


def _tokenizer(transformer: Path, config: dict, settings: dict):
    from tokenizers import Tokenizer

    path = transformer / "tokenizer.json"
    if not path.is_file():
        raise UnsupportedModel("no tokenizer.json")
    tokenizer_config = _json(transformer / "tokenizer_config.json")
    if tokenizer_config.get("truncation_side", "right") != "right":
        raise UnsupportedModel("left truncation")
    tokenizer = Tokenizer.from_file(str(path))
    if settings.get("do_lower_case") and '"lowercase": true' not in tokenizer.normalizer_json():
        raise UnsupportedModel("lower-casing the tokenizer does not do")
    # sentence-transformers: its own limit if set, else the tokenizer's, capped at the
    # model's positions.
    limit = settings.get("max_seq_length")
    if limit is None:
        limit = min(
            int(tokenizer_config.get("model_max_length") or NO_LIMIT),
            int(config.get("max_position_embeddings", NO_LIMIT)),
        )
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=int(limit), strategy="longest_first")
    pad_token = tokenizer_config.get("pad_token")
    if isinstance(pad_token, dict):
        pad_token = pad_token.get("content")
    pad_id = tokenizer.token_to_id(pad_token) if pad_token else None
    if pad_id is None:
        pad_id = config.get("pad_token_id")
    if pad_id is None:
        raise UnsupportedModel("no padding token")
    if config["model_type"] != "bert" and pad_id != config.get("pad_token_id"):
        raise UnsupportedModel("the tokenizer and the model disagree on the padding id")
    return tokenizer, int(pad_id)


def _weights(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    if not path.is_file():
        raise UnsupportedModel("no model.safetensors")
    loaded = load_file(str(path))
    anchor = "embeddings.word_embeddings.weight"
    prefixes = [k[: -len(anchor)] for k in loaded if k.endswith(anchor)]
    if len(prefixes) != 1:
        raise UnsupportedModel("no single set of encoder weights")
    prefix = prefixes[0]
    weights = {k[len(prefix) :]: v for k, v in loaded.items() if k.startswith(prefix)}
    # transformers computes in the dtype the weights were saved in; this module in float32.
    if any(v.dtype != np.float32 for v in weights.values()):
        raise UnsupportedModel("weights not in float32")
    if "embeddings.token_type_embeddings.weight" not in weights:
        raise UnsupportedModel("no token type embeddings")
    return weights
