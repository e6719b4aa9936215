"""A bad file or a damaged index never stops the service (issue 18): hostile uploads through
the library, the CLI and the API; a damaged index version per kind of damage; crashes in the
middle of docs-folder changes; versions in use; names."""

from __future__ import annotations

import gc
import json
import shutil
import signal
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from qabot.index import build_index
from qabot.index.layout import (
    CACHE,
    CURRENT,
    SEGMENTS,
    VERSIONS,
    current_version,
    inspect_index,
    list_versions,
    writer_lock,
)
from qabot.ingest import discover, doc_id_for
from qabot.library import JOURNAL, LibraryError, document_path, recover, safe_name
from qabot.service import QAService

from . import damaged
from .test_api import (
    AUTH,
    NEW_REPORT,
    NEW_REPORT_NAME,
    TOKEN,
    assert_error,
    doc_ids,
    make_settings,
    running,
    upload,
)
from .test_cli import qabot

QUESTION = "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"

HOSTILE = [
    ("xml-hong.docx", damaged.docx_broken_xml),
    ("long-sau.docx", damaged.docx_deep_xml),
    ("bom.docx", damaged.docx_zip_bomb),
    ("nen-hong.docx", damaged.docx_corrupt_deflate),
    ("cut.docx", damaged.docx_truncated),
    ("cut.pdf", damaged.pdf_truncated),
    *[(f"m{n}.pdf", lambda data=data: data) for n, data in enumerate(damaged.pdf_mutations(6))],
]


def folder_ids(docs: Path) -> list[str]:
    return sorted(doc_id_for(p, docs) for p in discover(docs))


def assert_folder_matches_index(service: QAService) -> None:
    assert folder_ids(service.docs_dir) == sorted(d.doc_id for d in service.documents())
    assert not (service.docs_dir / JOURNAL).exists() or not any(
        (service.docs_dir / JOURNAL).iterdir()
    )
    assert not [p for p in service.docs_dir.iterdir() if p.name.startswith(".upload-")]


# --- hostile uploads ---------------------------------------------------------------------


def test_hostile_uploads_are_refused_and_not_kept(writable_service: QAService):
    service = writable_service
    before = folder_ids(service.docs_dir)
    for name, make in HOSTILE:
        data = make()
        try:
            service.add_documents([(name, data)])
        except LibraryError as exc:
            assert exc.code == "unreadable", (name, exc.code)
            assert "Không đọc được" in str(exc)
        else:  # a mutated PDF whose damage missed its text is a fair document
            assert name.startswith("m") and name.endswith(".pdf")
            service.remove_documents([name])
        assert folder_ids(service.docs_dir) == before, name
        assert_folder_matches_index(service)
    # Normal work goes on.
    added, summary = service.add_documents([(NEW_REPORT_NAME, NEW_REPORT.encode())])
    assert [a.doc_id for a in added] == [NEW_REPORT_NAME] and summary.published
    assert_folder_matches_index(service)


def test_a_build_skips_and_names_every_unreadable_file(docs_copy, index_copy, embedder):
    for name, make in HOSTILE[:6]:
        (docs_copy / name).write_bytes(make())
    summary = build_index(docs_copy, index_copy, embedder)
    assert summary.documents == 5
    assert {s.source for s in summary.skipped_files} == {name for name, _ in HOSTILE[:6]}
    assert all(s.reason for s in summary.skipped_files)
    assert inspect_index(index_copy).ok


def test_cli_index_add_refuses_damaged_files(docs_copy, index_copy, tmp_path):
    before = folder_ids(docs_copy)
    bomb = tmp_path / "bom.docx"
    bomb.write_bytes(damaged.docx_zip_bomb())
    broken = tmp_path / "hong.pdf"
    broken.write_bytes(damaged.pdf_truncated())
    for path in (bomb, broken):
        result = qabot(
            "index", "add", str(path), "--docs", str(docs_copy), "--index", str(index_copy)
        )
        assert result.returncode == 1, result.stdout
        assert "Không đọc được tệp" in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert folder_ids(docs_copy) == before
    # A build over the untouched folder changes nothing; a good file is still added.
    good = tmp_path / NEW_REPORT_NAME
    good.write_text(NEW_REPORT, encoding="utf-8")
    result = qabot("index", "add", str(good), "--docs", str(docs_copy), "--index", str(index_copy))
    assert result.returncode == 0, result.stderr
    assert folder_ids(docs_copy) == sorted([*before, NEW_REPORT_NAME])


def test_api_upload_of_damaged_files_is_422_and_not_kept(writable_service: QAService):
    settings = make_settings(admin_token=TOKEN, max_upload_bytes=10 * 1024 * 1024)
    with running(writable_service, settings) as admin:
        before = doc_ids(admin)
        for name, make in HOSTILE[:6]:
            body = assert_error(upload(admin, (name, make())), 422, "unreadable")
            assert name in body["detail"]
            assert sorted(doc_ids(admin)) == folder_ids(writable_service.docs_dir)
            assert doc_ids(admin) == before
        long_name = "a" * 300 + ".txt"
        assert_error(upload(admin, (long_name, NEW_REPORT.encode())), 422, "invalid_name")
        response = upload(admin, (NEW_REPORT_NAME, NEW_REPORT.encode()))
        assert response.status_code == 201, response.text
        assert NEW_REPORT_NAME in doc_ids(admin)
        response = admin.delete(f"/documents/{'b' * 300}.txt", headers=AUTH)
        assert response.status_code == 422, response.text
        response = admin.delete("/documents/x%00.txt", headers=AUTH)
        assert 400 <= response.status_code < 500, response.text


# --- a damaged index -----------------------------------------------------------------------


def two_versions(index_dir: Path) -> tuple[str, str]:
    """An older good version and a live one: a copy of it under a later name, whose segments
    are copies too (files identical, checksums too), so that damage to the new version's
    files leaves the old one whole."""
    old = current_version(index_dir)
    new = old[:-5] + "99999"  # sorts after old
    shutil.copytree(index_dir / VERSIONS / old, index_dir / VERSIONS / new)
    manifest = json.loads((index_dir / VERSIONS / new / "manifest.json").read_text())
    for segment in manifest["segments"]:
        copy = segment["id"][:-5] + "99999"
        shutil.copytree(index_dir / SEGMENTS / segment["id"], index_dir / SEGMENTS / copy)
        segment["id"] = copy
    (index_dir / VERSIONS / new / "manifest.json").write_text(json.dumps(manifest))
    (index_dir / CURRENT).write_text(new + "\n")
    return old, new


def new_segment(index_dir: Path, version: str) -> Path:
    """The folder of a version's (first) segment."""
    manifest = json.loads((index_dir / VERSIONS / version / "manifest.json").read_text())
    return index_dir / SEGMENTS / manifest["segments"][0]["id"]


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_middle(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {
    "meta.sqlite": lambda v: (v / "meta.sqlite").unlink(),
    "vectors.faiss": lambda v: _truncate(v / "vectors.faiss"),
    "bm25.npz": lambda v: _truncate(v / "bm25.npz"),
    "sentence_vectors.npy": lambda v: _truncate(v / "sentence_vectors.npy"),
    "sentence_spans.npy": lambda v: _flip_middle(v / "sentence_spans.npy"),
    "manifest.json": lambda v: (v / "manifest.json").write_text('{"format": 2, "embed'),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_a_damaged_live_version_falls_back_is_named_and_rebuilt(
    kind, docs_copy, index_copy, embedder
):
    old, new = two_versions(index_copy)
    # The version's own manifest, or a file of its segment.
    folder = (
        new_segment(index_copy, new) if kind != "manifest.json" else index_copy / VERSIONS / new
    )
    DAMAGE[kind](folder)

    service = QAService(index_copy, embedder)
    assert service.index.version == old  # the previous good version is served
    status = service.status()
    assert status["status"] == "degraded" and status["damaged"][0]["version"] == new
    assert kind in json.dumps(status["damaged"])
    assert service.ask(QUESTION).found
    service.close()

    result = qabot("index", "verify", "--index", str(index_copy), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["live"] == new and report["serving"] == old and not report["ok"]
    bad = next(v for v in report["versions"] if v["version"] == new)
    assert kind in {p["file"].rsplit("/", 1)[-1] for p in bad["problems"]}

    result = qabot("index", "build", "--docs", str(docs_copy), "--index", str(index_copy))
    assert result.returncode == 0, result.stderr
    report = inspect_index(index_copy)
    assert report.ok and report.live not in (old, new)
    assert QAService(index_copy, embedder).ask(QUESTION).found


def test_current_made_a_folder(docs_copy, index_copy, embedder):
    live = current_version(index_copy)
    (index_copy / CURRENT).unlink()
    (index_copy / CURRENT).mkdir()
    service = QAService(index_copy, embedder)
    assert service.index.version == live and service.status()["status"] == "degraded"
    status = qabot("index", "status", "--index", str(index_copy))
    assert status.returncode == 1 and "CURRENT" in status.stdout
    result = qabot("index", "build", "--docs", str(docs_copy), "--index", str(index_copy))
    assert result.returncode == 0, result.stderr
    assert (index_copy / CURRENT).is_file() and inspect_index(index_copy).ok


def test_no_good_version_left_is_a_clear_error(index_copy, embedder):
    live = current_version(index_copy)
    (new_segment(index_copy, live) / "vectors.faiss").write_bytes(b"")
    service = QAService(index_copy, embedder)
    assert service.index is None and service.status()["status"] == "damaged"
    result = qabot("ask", QUESTION, "--index", str(index_copy))
    assert result.returncode == 1 and "bị hỏng" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_damaged_embedding_cache_is_set_aside_and_rebuilt(tmp_path, embedder):
    # A one-report folder: the cache is rebuilt from scratch, so keep it small.
    docs, index_dir = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    (docs / NEW_REPORT_NAME).write_text(NEW_REPORT, encoding="utf-8")
    build_index(docs, index_dir, embedder)
    (index_dir / CACHE).write_bytes(b"SQLite format 3\x00" + b"\x13" * 5000)
    for extra in ("-wal", "-shm"):
        (index_dir / f"{CACHE}{extra}").unlink(missing_ok=True)
    result = qabot("index", "verify", "--index", str(index_dir))
    assert result.returncode == 1 and "Bộ nhớ đệm vector hỏng" in result.stdout
    assert qabot("index", "status", "--index", str(index_dir)).returncode == 1
    (docs / "hai.txt").write_text(NEW_REPORT.replace("320", "330"), encoding="utf-8")
    summary = build_index(docs, index_dir, embedder)
    assert summary.published and summary.documents == 2
    assert list(index_dir.glob(f"{CACHE}.damaged-*"))
    assert inspect_index(index_dir).ok


def test_a_service_stays_on_its_version_when_a_new_one_is_damaged(writable_service, embedder):
    service = writable_service
    served = service.index.version
    _, new = two_versions(service.index_dir)
    _truncate(new_segment(service.index_dir, new) / "vectors.faiss")
    assert service.reload() is False
    assert service.index.version == served
    assert service.ask(QUESTION).found
    assert service.status()["damaged"][0]["version"] == new


# --- crashes and races in the docs folder -------------------------------------------------


def test_a_removal_killed_midway_is_undone_with_the_name_kept(writable_service, embedder):
    service = writable_service
    doc_id = folder_ids(service.docs_dir)[0]
    script = (
        "import sys, time; from pathlib import Path; from qabot.library import park_files; "
        f"park_files(Path(sys.argv[1]), [{doc_id!r}]); print('parked', flush=True); "
        "time.sleep(120)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(service.docs_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "parked"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=10)
    assert not (service.docs_dir / doc_id).exists()  # parked under the journal
    # A running service's next build settles it: the index still has it, so it comes back.
    service.rebuild()
    assert (service.docs_dir / doc_id).is_file()
    assert_folder_matches_index(service)


def test_a_removal_killed_after_its_build_is_finished(writable_service, embedder):
    from qabot.library import park_files

    service = writable_service
    doc_id = folder_ids(service.docs_dir)[0]
    change = park_files(service.docs_dir, [doc_id])
    build_index(service.docs_dir, service.index_dir, embedder)  # published, then "killed"
    change.release()
    service.close()
    restarted = QAService(service.index_dir, embedder, docs_dir=service.docs_dir)
    assert doc_id not in folder_ids(restarted.docs_dir)
    assert not list(restarted.docs_dir.rglob("*.txt.*"))
    assert_folder_matches_index(restarted)


def test_an_upload_refused_as_busy_keeps_a_file_another_build_indexed(writable_service, embedder):
    from qabot.index import IndexBusyError

    service = writable_service
    with writer_lock(service.index_dir), pytest.raises(IndexBusyError):
        service.add_documents([(NEW_REPORT_NAME, NEW_REPORT.encode())], wait_seconds=0.3)
    assert (service.docs_dir / NEW_REPORT_NAME).is_file()  # not deleted on a guess
    # Meanwhile another build (which read the folder before settling anything) indexes it.
    build_index(service.docs_dir, service.index_dir, embedder)
    service.rebuild()  # settles the journal: the index holds exactly this file, so it stays
    assert (service.docs_dir / NEW_REPORT_NAME).is_file()
    assert NEW_REPORT_NAME in {d.doc_id for d in service.documents()}
    assert_folder_matches_index(service)


def test_an_upload_refused_as_busy_is_taken_back_by_the_next_build(writable_service):
    from qabot.index import IndexBusyError

    service = writable_service
    with writer_lock(service.index_dir), pytest.raises(IndexBusyError):
        service.add_documents([(NEW_REPORT_NAME, NEW_REPORT.encode())], wait_seconds=0.3)
    with writer_lock(service.index_dir):
        from qabot.index.loaded import live_documents

        recover(service.docs_dir, live_documents(service.index_dir))
    assert not (service.docs_dir / NEW_REPORT_NAME).exists()
    assert_folder_matches_index(service)


def test_a_version_in_use_is_not_pruned(writable_service, embedder, tmp_path):
    service = writable_service
    served = service.index.version
    doc_id = service.documents()[0].doc_id
    for number in range(2):  # two quick external builds
        (service.docs_dir / f"extra-{number}.txt").write_text(
            NEW_REPORT.replace("320", str(400 + number)), encoding="utf-8"
        )
        build_index(service.docs_dir, service.index_dir, embedder)
    assert served in list_versions(service.index_dir)
    assert service.paragraph_context(doc_id, 1).paragraphs  # the lagging service still reads
    service.reload()
    assert service.index.version != served
    gc.collect()
    (service.docs_dir / "extra-2.txt").write_text(NEW_REPORT.replace("320", "402"), "utf-8")
    build_index(service.docs_dir, service.index_dir, embedder)
    assert served not in list_versions(service.index_dir)


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "a" * 300 + ".txt",
        "bao\x00cao.txt",
        "bao\ncao.txt",
        "bao\tcao.txt",
        "\x1b[31mdo\x1b[0m.txt",
        "bao-cao-\u202etxt.exe.txt",
        "bao\u200bcao.txt",
    ],
)
def test_unsafe_names_are_refused(name):
    with pytest.raises(LibraryError) as caught:
        safe_name(name)
    assert caught.value.code == "invalid_name"


def test_nfc_and_nfd_twins_are_one_document(tmp_path):
    from qabot.library import add_file

    composed = unicodedata.normalize("NFC", "báo-cáo-hội-nghị.txt")
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    added = add_file(tmp_path, decomposed, NEW_REPORT.encode())
    assert added.path.name == composed
    with pytest.raises(LibraryError) as caught:
        add_file(tmp_path, composed, NEW_REPORT.replace("320", "330").encode())
    assert caught.value.code == "exists"
    # A file that arrived with a decomposed name is found by its composed id, and back.
    (tmp_path / composed).rename(tmp_path / decomposed)
    assert document_path(tmp_path, composed).name == decomposed
