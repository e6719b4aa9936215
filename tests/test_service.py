"""What the service owns for every interface: more passages, example questions, the
language hint, the index status, upload checks; and the one error base class."""

from __future__ import annotations

from pathlib import Path

import pytest

from qabot import errors
from qabot.messages import OTHER_LANGUAGE_HINT
from qabot.service import (
    MAX_TOP_K,
    LibraryError,
    NotReadyError,
    QabotError,
    QAService,
    index_status,
    passage_key,
)

QUESTION = "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"
OFF_TOPIC = "Thời tiết Hà Nội ngày mai thế nào?"


def test_more_passages_continue_where_the_first_page_ended(service: QAService) -> None:
    first = service.ask(QUESTION, 3)
    assert first.found and len(first.passages) == 3
    page = service.more_passages(QUESTION, first.passages, count=3)
    assert 1 <= len(page.passages) <= 3
    shown = {passage_key(p) for p in first.passages}
    assert not shown & {passage_key(p) for p in page.passages}  # nothing shown twice
    # The same passages as the bot's "Xem thêm" gave by asking again with a larger top_k.
    wider = service.ask(QUESTION, 6)
    expected = [p for p in wider.passages if passage_key(p) not in shown][:3]
    assert [passage_key(p) for p in page.passages] == [passage_key(p) for p in expected]
    assert page.more == (len(wider.passages) >= 6)


def test_more_passages_stop_at_the_limit_and_when_not_found(service: QAService) -> None:
    many = service.ask(QUESTION, MAX_TOP_K)
    full = service.more_passages(QUESTION, [many.passages[0]] * MAX_TOP_K)
    assert full.passages == [] and full.more is False
    off = service.ask(OFF_TOPIC, 3)
    assert not off.found
    assert service.more_passages(OFF_TOPIC, off.passages).passages == []


def test_example_questions_are_answerable_and_cached_per_version(service: QAService) -> None:
    examples = service.example_questions()
    assert 1 <= len(examples) <= 4
    assert all(q.strip().endswith("?") for q in examples)
    answerable = [q for q in examples if service.ask(q, 1).found]
    assert answerable  # the reports answer at least the first ones offered
    assert service.example_questions(3) == examples[:3]
    assert service.example_questions() is not service.example_questions()  # a copy
    assert service.example_questions(0) == []


def test_example_questions_without_an_index_are_none(tmp_path: Path, embedder) -> None:
    assert QAService(tmp_path, embedder).example_questions() == []


def test_hint_asks_for_vietnamese_only_when_it_may_help(service: QAService) -> None:
    english = service.ask("What is the weather in Hanoi tomorrow?", 3)
    assert not english.found
    assert service.hint_for(english) == OTHER_LANGUAGE_HINT
    assert service.hint_for(service.ask(OFF_TOPIC, 3)) is None  # Vietnamese, just not there
    assert service.hint_for(service.ask(QUESTION, 3)) is None


def test_index_status_reads_the_manifest(reports_index: Path, service: QAService) -> None:
    status = index_status(reports_index)
    assert status.version == service.index.version
    assert status.documents == 5 and status.passages == len(service.index.passages)
    assert status.embedder == service.embedder.id
    assert status.live == status.version and status.report.ok
    assert status.calibration == "fitted"
    assert set(status.as_dict()) == {
        "index_dir", "status", "version", "live", "created_at", "embedder", "dim",
        "documents", "passages", "skipped", "calibration", "damage",
    }  # fmt: skip


def test_index_status_without_an_index_says_how_to_build_one(tmp_path: Path) -> None:
    with pytest.raises(NotReadyError, match="qabot index build") as raised:
        index_status(tmp_path)
    assert raised.value.code == "no_index"
    assert str(tmp_path) in str(raised.value)


def test_check_upload_refuses_by_name_and_size(service: QAService) -> None:
    service.check_upload("bao-cao.docx", 1000)
    with pytest.raises(LibraryError) as bad_name:
        service.check_upload("../x.txt")
    assert bad_name.value.code == "invalid_name"
    with pytest.raises(LibraryError) as too_large:
        service.check_upload("a.txt", service.max_upload_bytes + 1)
    assert too_large.value.code == "too_large" and "MB" in str(too_large.value)


def test_every_error_has_the_base_class_and_a_stable_code() -> None:
    from qabot.calibration import CalibrationError
    from qabot.cli import CommandError
    from qabot.embedding import EmbedderError
    from qabot.errors import IndexStoreError
    from qabot.fitted import ModelFileError
    from qabot.index import IndexBusyError, IndexDamagedError, IndexMismatchError, IndexMissingError
    from qabot.ingest import IngestError
    from qabot.library import LibraryError as LibraryErrorFromLibrary
    from qabot.questionlog import LogUnavailableError
    from qabot.service import NotFoundError, QuestionError
    from qabot.telegram import BotConfigError

    expected = {
        QuestionError: "invalid_question",
        NotReadyError: "no_index",
        NotFoundError: "not_found",
        LibraryErrorFromLibrary: "library_error",
        IngestError: "unreadable",
        IndexStoreError: "index_error",
        IndexMissingError: "index_missing",
        IndexMismatchError: "index_mismatch",
        IndexBusyError: "index_busy",
        IndexDamagedError: "index_damaged",
        EmbedderError: "embedder_error",
        ModelFileError: "model_file",
        CalibrationError: "calibration",
        LogUnavailableError: "log_unavailable",
        BotConfigError: "bot_config",
        CommandError: "command_failed",
    }
    for cls, code in expected.items():
        assert issubclass(cls, QabotError) and cls.code == code
        assert getattr(errors, cls.__name__) is cls  # one class, importable from both places
    assert set(errors.__all__) == {c.__name__ for c in expected} | {"QabotError"}
    refused = LibraryErrorFromLibrary("duplicate", "Trùng.")
    assert refused.code == "duplicate" and str(refused) == "Trùng."
    assert IndexBusyError("bận").code == "index_busy"
    assert isinstance(QuestionError("empty_question", "x"), ValueError)  # older excepts hold
