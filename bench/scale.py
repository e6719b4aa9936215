"""How qabot scales with the corpus: build, start-up, memory and latency at growing sizes.

    python bench/scale.py [--sizes 1k,10k,100k] [--max 100k] [--questions 100] [--keep DIR]
    python bench/scale.py --ann [--ann-sizes 50k,250k]      # FAISS settings sweep instead

For each size it generates a corpus of about N passages from the sample reports (their
sentences recombined, with numbers, provinces and people's names varied; written as .txt
reports of 30-100 passages each, so that adding one report is a realistic update) and runs
qabot as a user would, in subprocesses:

- ``qabot index build``: wall time and the build's peak RSS (its VmHWM, polled);
- ``qabot serve`` on 127.0.0.1, an ephemeral port: seconds from start to a healthy /health,
  then a bounded set of questions over HTTP (p50 / p95 of the client-side latency) and the
  server's RSS after them;
- the query embedding alone (embed_p50_ms, timed in this process with the same model), so
  ``ask_p50_ms - embed_p50_ms`` is qabot's own cost per question;
- index_mb: the live index version and its segment on disk (the embedding cache, a
  build-time cache, apart);
- recall_at_40: the version's FAISS index against exact search over the same vectors, for
  the questions and sampled sentence vectors as queries;
- add_one_seconds: one more report copied into the folder and the incremental build run
  (it writes one new segment of that report's passages); add_one_build_seconds: the same
  build's own time, as its summary reports it (without starting Python and loading the
  embedding model, about a second); add_one_upload_seconds: another report
  uploaded to the running server (POST /documents), as an admin adds one, until the
  server answers from the new version.

The embedder is a tiny sentence-transformers model (a 2-layer, 64-dim BERT with random
weights and a word-piece vocabulary of the sample reports' syllables), built on the spot:
nothing is downloaded and embedding is cheap, so qabot's own costs show. qabot computes it
with numpy (qabot.encoder), as it would any plain BERT model. Prints one JSON line
per size. Servers are always stopped and temporary folders removed (unless --keep). With
--keep, a ``size-N`` folder already there is removed first and built anew, its embedding
cache with it: copy a million-passage folder aside before running the same size again.

``--ann`` sweeps the FAISS index settings (HNSW M / efSearch, IVF nlist / nprobe) on
clustered synthetic vectors and on tiny-model vectors of a generated corpus, printing
recall@40 against exact search and the search latency per query for each setting: the
measurements behind the choice in qabot.index.vectors.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "data" / "reports"
SRC = ROOT / "src"
MODEL_NAME = "tiny-scale-64"
ADMIN_TOKEN = "scale-bench-admin-token"  # the servers it starts are its own, on 127.0.0.1
DIM = 64
K = 40

# Paragraphs of 550-950 characters: two never pack into one passage (pack_chars 1000) and
# none is split (max_chars 1400), so a report's passages are its paragraphs.
PARAGRAPH_CHARS = (550, 950)
PASSAGES_PER_REPORT = (30, 100)

PROVINCES = [
    "Hà Nội",
    "Hải Phòng",
    "Đà Nẵng",
    "Cần Thơ",
    "Thành phố Hồ Chí Minh",
    "Hà Tĩnh",
    "Quảng Ninh",
    "Bắc Ninh",
    "Hưng Yên",
    "Hải Dương",
    "Thái Bình",
    "Nam Định",
    "Ninh Bình",
    "Thanh Hóa",
    "Nghệ An",
    "Quảng Bình",
    "Quảng Trị",
    "Thừa Thiên Huế",
    "Quảng Nam",
    "Quảng Ngãi",
    "Bình Định",
    "Phú Yên",
    "Khánh Hòa",
    "Ninh Thuận",
    "Bình Thuận",
    "Bình Dương",
    "Đồng Nai",
    "Bà Rịa - Vũng Tàu",
    "Long An",
    "Tiền Giang",
    "Bến Tre",
    "Vĩnh Long",
    "Trà Vinh",
    "Sóc Trăng",
    "An Giang",
    "Kiên Giang",
    "Cà Mau",
    "Bạc Liêu",
    "Hậu Giang",
    "Đồng Tháp",
    "Tây Ninh",
    "Bình Phước",
    "Lâm Đồng",
    "Đắk Lắk",
    "Gia Lai",
    "Kon Tum",
    "Thái Nguyên",
    "Phú Thọ",
    "Vĩnh Phúc",
    "Bắc Giang",
    "Lạng Sơn",
    "Lào Cai",
    "Yên Bái",
    "Tuyên Quang",
    "Hà Giang",
    "Cao Bằng",
    "Sơn La",
    "Điện Biên",
    "Lai Châu",
    "Hòa Bình",
    "Hà Nam",
]
SAMPLE_PLACES = ["Hải Phòng", "Cần Thơ", "Hà Tĩnh", "TP.HCM", "TP. Hồ Chí Minh", "Thành phố"]
SURNAMES = [
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Hoàng",
    "Huỳnh",
    "Phan",
    "Vũ",
    "Võ",
    "Đặng",
    "Bùi",
    "Đỗ",
    "Hồ",
    "Ngô",
    "Dương",
    "Lý",
]
MIDDLE = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thanh", "Quốc", "Ngọc", "Xuân", "Công"]
GIVEN = [
    "An",
    "Bình",
    "Cường",
    "Dũng",
    "Giang",
    "Hà",
    "Hải",
    "Hùng",
    "Khánh",
    "Lan",
    "Long",
    "Mai",
    "Nam",
    "Phong",
    "Quang",
    "Sơn",
    "Tâm",
    "Thảo",
    "Trung",
    "Tuấn",
    "Vinh",
    "Yến",
]
PERIODS = [
    "sơ kết 6 tháng đầu năm",
    "tổng kết công tác năm",
    "sơ kết 9 tháng đầu năm",
    "sơ kết giữa nhiệm kỳ",
    "hội nghị ban chấp hành mở rộng",
    "báo cáo chính trị đại hội",
]
BODIES = [
    "Đảng ủy Khu kinh tế",
    "Ban Quản lý các Khu công nghiệp",
    "Đảng ủy các Khu Chế xuất",
    "Công đoàn các Khu công nghiệp",
    "Đảng ủy Khối doanh nghiệp",
]
QUESTION_TEMPLATES = [
    "{body} {province} kết nạp bao nhiêu đảng viên mới năm {year}?",
    "Hội nghị {period} {year} của {body} {province} có sự tham dự của những ai?",
    "Tổng vốn đầu tư vào các khu công nghiệp {province} năm {year} là bao nhiêu?",
    "{body} {province} đã làm gì để chăm lo đời sống người lao động?",
    "Có bao nhiêu doanh nghiệp đang hoạt động trong khu kinh tế {province}?",
    "Nhiệm vụ trọng tâm của {body} {province} trong năm {year} là gì?",
    "Tỷ lệ tổ chức cơ sở đảng hoàn thành tốt nhiệm vụ năm {year} là bao nhiêu?",
    "Kim ngạch xuất khẩu của doanh nghiệp khu công nghiệp {province} đạt bao nhiêu?",
    "Ai phát biểu chỉ đạo tại hội nghị {period} của {body} {province}?",
    "Công tác kiểm tra, giám sát của {body} {province} năm {year} có kết quả ra sao?",
    "Bao nhiêu lao động đang làm việc tại các khu công nghiệp {province}?",
    "{body} {province} thành lập bao nhiêu chi bộ mới trong năm {year}?",
]


# --- the corpus -------------------------------------------------------------------------


def sample_sentences(reports: Path = REPORTS) -> list[str]:
    """The sample reports' body sentences (title and date lines left out)."""
    from qabot.text import sentence_units

    sentences = []
    for path in sorted(reports.glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines()[2:]:
            line = " ".join(line.split())
            if len(line) < 60:
                continue
            for s, e in sentence_units(line):
                if 40 <= e - s <= 400:
                    sentences.append(line[s:e])
    return sentences


_PLACE = re.compile("|".join(re.escape(p) for p in sorted(SAMPLE_PLACES, key=len, reverse=True)))
_PERSON = re.compile(r"(?<=[Đđ]ồng chí )(?:[A-ZÀ-Ỹ][\wÀ-ỹ]*\s){2,3}[A-ZÀ-Ỹ][\wÀ-ỹ]*")
_NUMBER = re.compile(r"\d+")
_WORD = re.compile(r"\w+")


class CorpusGenerator:
    """Reports made of the sample sentences with numbers, places and names varied."""

    def __init__(self, seed: int = 0, reports: Path = REPORTS) -> None:
        self.rng = random.Random(seed)
        self.sentences = sample_sentences(reports)

    def _person(self) -> str:
        r = self.rng
        return f"{r.choice(SURNAMES)} {r.choice(MIDDLE)} {r.choice(GIVEN)}"

    def _number(self, match: re.Match) -> str:
        digits = match.group()
        if len(digits) == 4 and digits.startswith(("19", "20")):
            return str(self.rng.randint(2010, 2025))  # a year stays a year
        return str(
            self.rng.randint(
                1 if len(digits) == 1 else 10 ** (len(digits) - 1), 10 ** len(digits) - 1
            )
        )

    def sentence(self, province: str) -> str:
        text = self.rng.choice(self.sentences)
        text = _NUMBER.sub(self._number, text)
        text = _PLACE.sub(
            lambda m: province if self.rng.random() < 0.8 else self.rng.choice(PROVINCES), text
        )
        return _PERSON.sub(lambda m: self._person(), text)

    def paragraph(self, province: str) -> str:
        low, high = PARAGRAPH_CHARS
        while True:
            parts: list[str] = []
            while sum(len(p) + 1 for p in parts) < low:
                parts.append(self.sentence(province))
            text = " ".join(parts)
            if len(text) <= high:
                return text

    def report(self, passages: int) -> tuple[str, str]:
        """(file name stem, text) of one report of about ``passages`` passages."""
        r = self.rng
        province, body, period = r.choice(PROVINCES), r.choice(BODIES), r.choice(PERIODS)
        year = r.randint(2010, 2025)
        day, month = r.randint(1, 28), r.randint(1, 12)
        title = f"{body} {province} {period} {year}"
        date = f"{r.randint(7, 17):02d}:{r.randint(0, 59):02d} - {day:02d}/{month:02d}/{year}"
        paragraphs = [self.paragraph(province) for _ in range(passages)]
        stem = f"{year}-{month:02d}-{day:02d}-{r.getrandbits(32):08x}"
        return stem, "\n\n".join([title, date, *paragraphs]) + "\n"

    def questions(self, count: int) -> list[str]:
        r = random.Random(1)
        return [
            r.choice(QUESTION_TEMPLATES).format(
                body=r.choice(BODIES),
                province=r.choice(PROVINCES),
                period=r.choice(PERIODS),
                year=r.randint(2010, 2025),
            )
            for _ in range(count)
        ]


def write_corpus(folder: Path, passages: int, seed: int = 0) -> int:
    """Reports of about ``passages`` passages in all under ``folder`` (1,000 files a
    subfolder); returns the number of passages written (paragraphs; the build counts)."""
    generator = CorpusGenerator(seed)
    written = number = 0
    while written < passages:
        size = min(generator.rng.randint(*PASSAGES_PER_REPORT), passages - written)
        stem, text = generator.report(max(size, 1))
        sub = folder / f"batch-{number // 1000:04d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"{number:06d}-{stem}.txt").write_text(text, encoding="utf-8")
        written += max(size, 1)
        number += 1
    return written


# --- the embedders ----------------------------------------------------------------------


def build_tiny_model(
    folder: Path,
    dim: int = DIM,
    reports: Path = REPORTS,
    layers: int = 2,
    heads: int = 2,
    name: str = MODEL_NAME,
    max_seq_length: int = 128,
) -> Path:
    """A BERT (2 layers, 2 heads unless told) with ``dim`` hidden units and random weights,
    saved as a sentence-transformers model ``name`` under ``folder``; its vocabulary is the
    sample reports' syllables. Returns the model's folder (its name is the embedder id's
    tail)."""
    import torch
    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers 6 moved the modules (the old path warns)
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # older versions
        from sentence_transformers.models import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    target = folder / name
    if (target / "modules.json").exists():
        return target
    words: set[str] = set()
    for path in reports.glob("*.txt"):
        words.update(re.findall(r"\w+", path.read_text(encoding="utf-8").lower()))
    for names in (PROVINCES, SURNAMES, MIDDLE, GIVEN, PERIODS, BODIES):
        words.update(re.findall(r"\w+", " ".join(names).lower()))
    words -= {w for w in words if w.isdigit()}
    digits = [str(d) for d in range(10)] + [f"##{d}" for d in range(10)]
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "query", "passage", ":"]
    vocabulary = list(dict.fromkeys([*special, *digits, *sorted(words)]))
    raw = folder / "raw-bert"
    raw.mkdir(parents=True, exist_ok=True)
    tokenizer = BertTokenizerFast(
        vocab={w: i for i, w in enumerate(vocabulary)}, do_lower_case=True, strip_accents=False
    )
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(vocabulary),
        hidden_size=dim,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=(2 if layers <= 2 else 4) * dim,
        max_position_embeddings=max(256, max_seq_length),
    )
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=max_seq_length)
    pooling = Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling], device="cpu").save(str(target))
    shutil.rmtree(raw, ignore_errors=True)
    return target


class HashingEmbedder:
    """Syllables and syllable pairs hashed into ``dim`` signed buckets: a deterministic
    embedder with no model at all, for building large test corpora in seconds. Words
    shared between a question and a passage bring their vectors together, as a model's do."""

    def __init__(self, dim: int = DIM) -> None:
        if not 1 <= dim <= 64:
            raise ValueError("a blake2b digest gives at most 64 coordinates")
        self._dim = dim
        self._ids: dict[str, int] = {}
        self._table = np.zeros((1024, dim), dtype=np.float32)

    @property
    def id(self) -> str:
        return f"hashing-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _token_id(self, token: str) -> int:
        found = self._ids.get(token)
        if found is not None:
            return found
        number = len(self._ids)
        if number == len(self._table):
            self._table = np.concatenate([self._table, np.zeros_like(self._table)])
        digest = hashlib.blake2b(token.encode(), digest_size=self._dim).digest()
        self._table[number] = np.frombuffer(digest, dtype=np.int8).astype(np.float32) + 0.5
        self._ids[token] = number
        return number

    def _embed(self, texts: list[str]) -> np.ndarray:
        ids: list[int] = []
        starts = np.zeros(len(texts), dtype=np.int64)  # where each text's tokens begin in ids
        for i, text in enumerate(texts):
            starts[i] = len(ids)
            words = _WORD.findall(text.lower())
            tokens = [*words, *(f"{a}_{b}" for a, b in itertools.pairwise(words))]
            ids.extend(map(self._token_id, tokens))
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        # Each text's token vectors summed in one pass (np.add.at was half of a build's time).
        counts = np.diff(np.append(starts, len(ids)))
        some = counts > 0
        if some.any():
            vectors = self._table[np.asarray(ids, dtype=np.int64)]
            out[some] = np.add.reduceat(vectors, starts[some], axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.maximum(norms, 1e-12))

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._embed(texts)


# --- measuring --------------------------------------------------------------------------


def recall_at(index, vectors: np.ndarray, queries: np.ndarray, k: int = K) -> float:
    """Mean share of the exact top ``k`` (inner product) that ``index`` finds. A result tied
    with the exact k-th score counts as found: duplicates make any of them a right answer."""
    k = min(k, len(vectors))
    if k == 0 or not len(queries):
        return 1.0
    _, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    total = 0.0
    for start in range(0, len(queries), 64):
        scores = queries[start : start + 64] @ vectors.T
        kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
        for row, threshold in enumerate(kth):
            rows = found[start + row]
            rows = rows[rows >= 0]
            total += float(np.sum(scores[row, rows] >= threshold - 1e-6)) / k
    return total / len(queries)


def _env(model: Path, docs: Path, index: Path, src: Path = SRC) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(src), env.get("PYTHONPATH", "")] if p)
    env.update(
        QABOT_EMBEDDER=f"sentence-transformers:{model}",
        QABOT_DOCS_DIR=str(docs),
        QABOT_INDEX_DIR=str(index),
        QABOT_LOG_DB="off",
        QABOT_LOG_LEVEL="WARNING",
        QABOT_ADMIN_TOKEN=ADMIN_TOKEN,
        # One client asks 105 questions as fast as it can, past a client's burst (100).
        QABOT_RATE_LIMIT="0",
        TOKENIZERS_PARALLELISM="false",
    )
    return env


def _qabot(*args: str) -> list[str]:
    return [sys.executable, "-m", "qabot.cli", *args]


def run_build(env: dict[str, str], log: Path) -> tuple[float, float, dict]:
    """(seconds, peak RSS in MB, the build's JSON summary) of one ``qabot index build``."""
    started = time.perf_counter()
    summary_file = log.with_suffix(".json")
    with open(log, "wb") as errors, open(summary_file, "wb") as out:
        proc = subprocess.Popen(
            _qabot("index", "build", "--json"), env=env, stdout=out, stderr=errors
        )
        try:
            peak_kb, status = _wait_for_peak(proc.pid)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        text = log.read_text(encoding="utf-8", errors="replace")
        raise RuntimeError(f"qabot index build failed ({proc.returncode}):\n{text[-3000:]}")
    return seconds, peak_kb / 1024, json.loads(summary_file.read_text(encoding="utf-8"))


def _wait_for_peak(pid: int) -> tuple[int, int]:
    """(peak RSS in KB, wait status) of a child, once it exits. The peak is its VmHWM,
    read every 50 ms while it runs (a high-water mark: the last reading is the peak unless
    it rose in the last 50 ms). Its ru_maxrss would not do: it also counts the memory of
    this process, which the child was forked from before it ran qabot."""
    peak_kb = 0
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return (peak_kb or usage.ru_maxrss), status
        with contextlib.suppress(OSError, KeyError):  # exiting: wait4 reaps it next
            peak_kb = max(peak_kb, _status_kb(pid, "VmHWM"))
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _status_kb(pid: int, field: str) -> int:
    """A memory field of /proc/<pid>/status ("VmRSS", "VmHWM"), in KB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mb(pid: int) -> float:
    try:
        return _status_kb(pid, "VmRSS") / 1024
    except KeyError:
        return float("nan")


@contextlib.contextmanager
def server(env: dict[str, str], log: Path, timeout: float = 300.0) -> Iterator[tuple]:
    """A running ``qabot serve``: yields (base url, pid, seconds to a healthy /health)."""
    port = free_port()
    with open(log, "wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            _qabot("serve", "--host", "127.0.0.1", "--port", str(port)),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"qabot serve exited: {log.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    pass
                if time.perf_counter() - started > timeout:
                    raise RuntimeError("qabot serve did not become healthy")
                time.sleep(0.05)
            yield url, proc.pid, time.perf_counter() - started
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def ask(url: str, question: str) -> float:
    """Milliseconds of one POST /ask, as the client sees it."""
    body = json.dumps({"question": question, "top_k": 5}).encode()
    request = urllib.request.Request(
        f"{url}/ask", data=body, headers={"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        if response.status != 200:
            raise RuntimeError(f"/ask answered {response.status}")
    return (time.perf_counter() - started) * 1000


def upload(url: str, name: str, text: str) -> float:
    """Seconds of one POST /documents (the running server indexes the report and serves
    the new version before it answers), checked by the report being listed after it."""
    import httpx

    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/documents",
        files={"files": (name, text.encode("utf-8"), "text/plain")},
        headers=headers,
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"POST /documents answered {response.status_code}: {response.text}")
    listed = httpx.get(f"{url}/documents", timeout=60).json()
    if name not in json.dumps(listed, ensure_ascii=False):
        raise RuntimeError(f"{name} is not listed after its upload")
    return seconds


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def measure_size(
    passages: int,
    work: Path,
    model: Path,
    embedder,
    questions: list[str],
    seed: int = 0,
    src: Path = SRC,
) -> dict:
    from qabot.index.layout import SEGMENTS, VERSIONS, current_version, read_manifest
    from qabot.index.vectors import load_vector_index

    docs, index = work / "docs", work / "index"
    write_corpus(docs, passages, seed)
    env = _env(model, docs, index, src)
    build_seconds, build_rss, summary = run_build(env, work / "build.log")

    with server(env, work / "serve.log") as (url, pid, ready):
        for q in questions[:5]:  # warm-up: first-call costs are not per-question costs
            ask(url, q)
        times = [ask(url, q) for q in questions]
        server_rss = rss_mb(pid)
        # How an admin adds a report: uploaded to the running service (no process to start,
        # no model to load), answered from as soon as the upload returns.
        stem, text = CorpusGenerator(seed + 2_000_003).report(PASSAGES_PER_REPORT[0] * 2)
        upload_seconds = upload(url, f"{stem}.txt", text)

    embed_times = []
    for q in questions:
        started = time.perf_counter()
        embedder.embed_queries([q])
        embed_times.append((time.perf_counter() - started) * 1000)

    live = current_version(index)
    version = index / VERSIONS / live
    # A fresh build writes one segment: the version's vectors and sentences are its (an
    # index from before segments, --src of an older branch, holds them in the version).
    segments = read_manifest(index, live).get("segments")
    segment_dir = index / SEGMENTS / segments[0]["id"] if segments else version
    vectors_index = load_vector_index(segment_dir / "vectors.faiss")
    vectors = vectors_index.reconstruct_n(0, vectors_index.ntotal)
    rng = np.random.default_rng(seed)
    sentences = np.load(segment_dir / "sentence_vectors.npy", mmap_mode="r")
    sample = np.sort(rng.choice(len(sentences), size=min(200, len(sentences)), replace=False))
    queries = np.concatenate([embedder.embed_queries(questions), sentences[sample]])
    queries = queries.astype(np.float32)
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    recall = recall_at(vectors_index, vectors, queries)
    index_mb = folder_mb(version) + (folder_mb(segment_dir) if segments else 0.0)
    del vectors_index, vectors

    # One more report: a new file beside the others, and the incremental build.
    stem, text = CorpusGenerator(seed + 1_000_003).report(PASSAGES_PER_REPORT[0] * 2)
    (docs / "added").mkdir(exist_ok=True)
    (docs / "added" / f"{stem}.txt").write_text(text, encoding="utf-8")
    add_seconds, _, added = run_build(env, work / "add.log")

    return {
        "passages": int(summary.get("passages", passages)),
        "build_seconds": round(build_seconds, 1),
        "build_peak_rss_mb": round(build_rss),
        "index_mb": round(index_mb, 1),
        "ready_seconds": round(ready, 2),
        "server_rss_mb": round(server_rss),
        "ask_p50_ms": round(statistics.median(times), 1),
        "ask_p95_ms": round(percentile(times, 95), 1),
        "embed_p50_ms": round(statistics.median(embed_times), 2),
        "recall_at_40": round(recall, 4),
        "add_one_seconds": round(add_seconds, 1),
        # The build's own time, without the process start and the model's loading.
        "add_one_build_seconds": round(float(added.get("seconds", 0.0)), 2),
        "add_one_upload_seconds": round(upload_seconds, 2),
    }


# --- the FAISS settings sweep -----------------------------------------------------------


def clustered_vectors(n: int, dim: int = DIM, clusters: int = 200, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` random centres: text embeddings are clustered by
    topic, and such data is harder for an ANN index than uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    which = rng.integers(0, clusters, n)
    spread = rng.uniform(0.3, 1.0, clusters).astype(np.float32)[which, None]
    vectors = centres[which] + spread * rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors)


def sweep(name: str, vectors: np.ndarray, queries: np.ndarray) -> None:
    import faiss

    from qabot.index import vectors as qv

    n, dim = vectors.shape

    def report(kind: str, settings: dict, index, build_s: float) -> None:
        started = time.perf_counter()
        for q in queries:  # one at a time, as qabot asks
            index.search(q[None, :], K)
        per_query = (time.perf_counter() - started) * 1000 / len(queries)
        line = {
            "data": name,
            "n": n,
            "index": kind,
            **settings,
            "build_s": round(build_s, 1),
            "recall_at_40": round(recall_at(index, vectors, queries), 4),
            "search_ms": round(per_query, 3),
        }
        print(json.dumps(line), flush=True)

    started = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(vectors)
    report("flat", {}, flat, time.perf_counter() - started)
    # An HNSW graph takes minutes past a few hundred thousand vectors on two cores: one M.
    for m in (16, 32) if n <= 100_000 else (32,):
        started = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = 40
        hnsw.add(vectors)
        build_s = time.perf_counter() - started
        for ef in (64, 128, 256):
            hnsw.hnsw.efSearch = ef
            report("hnsw", {"M": m, "efSearch": ef}, hnsw, build_s)
    for nlist in sorted({qv.ivf_lists(n) // 2, qv.ivf_lists(n), 2 * qv.ivf_lists(n)}):
        started = time.perf_counter()
        quantizer = faiss.IndexFlatIP(dim)
        ivf = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
        ivf.train(vectors[np.random.default_rng(0).permutation(n)[: min(n, 64 * nlist)]])
        ivf.add(vectors)
        build_s = time.perf_counter() - started
        for nprobe in (8, 16, 32, 64, 128):
            ivf.nprobe = nprobe
            report("ivf", {"nlist": nlist, "nprobe": nprobe}, ivf, build_s)
    started = time.perf_counter()
    chosen = qv.build_vector_index(vectors, exact_limit=0)
    report(f"chosen:{qv.describe(chosen)}", {}, chosen, time.perf_counter() - started)


def run_ann(sizes: list[int], work: Path, model: Path) -> None:
    from qabot.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder(str(model))
    for n in sizes:
        data = clustered_vectors(n + 300, seed=n)
        sweep("clustered", data[:n].copy(), data[n:].copy())
    # Real tiny-model vectors: sentences of a generated corpus (passages cost too much to
    # embed for a sweep; sentence vectors come from the same model and the same text).
    generator = CorpusGenerator(7)
    n = min(sizes)
    texts = [generator.sentence(random.Random(i).choice(PROVINCES)) for i in range(n + 300)]
    started = time.perf_counter()
    data = embedder.embed_passages(texts)
    print(json.dumps({"embedded": len(texts), "seconds": round(time.perf_counter() - started)}))
    queries = embedder.embed_queries(generator.questions(100))
    sweep("tiny-model", data[:n].copy(), np.concatenate([data[n:], queries]))


# --- the command line -------------------------------------------------------------------


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * factor)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1k,10k,100k", help="passages, comma-separated")
    parser.add_argument(
        "--max",
        type=parse_size,
        default=None,
        help="also run 300k and 1M up to this size (e.g. 1000000)",
    )
    parser.add_argument("--questions", type=int, default=100, help="questions asked per size")
    parser.add_argument("--keep", type=Path, default=None, help="keep corpora here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--src",
        type=Path,
        default=SRC,
        help="the qabot source the subprocesses run (another branch's src)",
    )
    parser.add_argument("--ann", action="store_true", help="sweep FAISS settings instead")
    parser.add_argument("--ann-sizes", default="50k,250k")
    args = parser.parse_args(argv)

    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if args.max is not None:
        sizes = sorted(
            {
                *(s for s in sizes if s <= args.max),
                *(s for s in (300_000, 1_000_000) if s <= args.max),
            }
            | {args.max}
        )
    work = args.keep or Path(tempfile.mkdtemp(prefix="qabot-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        model = build_tiny_model(work / "model")
        if args.ann:
            run_ann([parse_size(s) for s in args.ann_sizes.split(",")], work, model)
            return 0
        from qabot.embedding import SentenceTransformerEmbedder

        embedder = SentenceTransformerEmbedder(str(model))
        questions = CorpusGenerator(args.seed).questions(args.questions)
        for size in sizes:
            folder = work / f"size-{size}"
            if folder.exists():
                shutil.rmtree(folder)
            result = measure_size(
                size, folder, model, embedder, questions, args.seed, args.src.resolve()
            )
            print(json.dumps(result), flush=True)
            if args.keep is None:
                shutil.rmtree(folder, ignore_errors=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
