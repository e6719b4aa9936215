"""Every error qabot raises on purpose, under one base class with a stable ``code``.

The message (``str(error)``) is Vietnamese, for people; ``code`` is a stable English
identifier, for programs (the HTTP API sends it as ``{"detail", "code"}``). Each class has a
default code; a few (QuestionError, LibraryError, IngestError) also take a code per
instance, because they cover several distinct refusals.

The hierarchy, with default codes::

    QabotError                      "error"
    ├── QuestionError               "invalid_question"  (per instance: empty_question, ...)
    ├── NotReadyError               "no_index"
    ├── NotFoundError               "not_found"
    ├── LibraryError                "library_error"     (per instance: invalid_name, ...)
    ├── IngestError                 "unreadable"
    ├── IndexStoreError             "index_error"
    │   ├── IndexMissingError       "index_missing"
    │   ├── IndexMismatchError      "index_mismatch"
    │   ├── IndexBusyError          "index_busy"
    │   └── IndexDamagedError       "index_damaged"
    ├── EmbedderError               "embedder_error"
    ├── ModelFileError              "model_file"
    ├── CalibrationError            "calibration"
    ├── LogUnavailableError         "log_unavailable"
    ├── BotConfigError              "bot_config"
    └── CommandError                "command_failed"

The classes stay importable from the modules that raise them (``qabot.service``,
``qabot.library``, ``qabot.ingest``, ``qabot.index``, ``qabot.embedding``,
``qabot.telegram``, ``qabot.cli``). Some also derive from the built-in exception they
derived from before (ValueError, LookupError, RuntimeError), so older ``except`` clauses
keep working. This module imports nothing from qabot, so every layer may use it.
"""

from __future__ import annotations

__all__ = [
    "BotConfigError",
    "CalibrationError",
    "CommandError",
    "EmbedderError",
    "IndexBusyError",
    "IndexDamagedError",
    "IndexMismatchError",
    "IndexMissingError",
    "IndexStoreError",
    "IngestError",
    "LibraryError",
    "LogUnavailableError",
    "ModelFileError",
    "NotFoundError",
    "NotReadyError",
    "QabotError",
    "QuestionError",
]


class QabotError(Exception):
    """Base class of qabot's errors: a message for people and a stable ``code``."""

    code: str = "error"

    def __init__(self, message: str = "", *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


# --- asking ----------------------------------------------------------------------------------


class QuestionError(QabotError, ValueError):
    """A question that cannot be asked: empty, too long, a bad history or top_k.

    Raised by ``qabot.service.clean_question``, ``clean_history`` and ``QAService.ask``;
    the code names the refusal (``empty_question``, ``question_too_long``,
    ``history_too_long``, ``invalid_history``, ``invalid_top_k``).
    """

    code = "invalid_question"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class BusyError(QuestionError):
    """A long question refused at once because enough long questions are already waiting
    for their turn (``QAService.ask``): ask again in a moment, or ask it shorter."""

    code = "busy"

    def __init__(self, message: str) -> None:
        super().__init__(self.code, message)


class NotReadyError(QabotError, RuntimeError):
    """No index is loaded yet, so there is nothing to answer from (``qabot.service``)."""

    code = "no_index"


class NotFoundError(QabotError, LookupError):
    """No such document, or no such paragraph in it (``qabot.service``)."""

    code = "not_found"


# --- the docs folder and its files -----------------------------------------------------------


class LibraryError(QabotError, ValueError):
    """A file that cannot be added to or removed from the docs folder (``qabot.library``).

    The code names the refusal: ``invalid_name``, ``unsupported_type``, ``empty_file``,
    ``unreadable``, ``duplicate``, ``exists``, ``too_large``, ``not_found``,
    ``no_docs_dir``.
    """

    code = "library_error"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message, code=code)


class IngestError(QabotError):
    """A file that cannot be read as a document: empty, undecodable, broken, no text
    (``qabot.ingest``). A build skips such a file and names it; an upload is refused."""

    code = "unreadable"


# --- the index -------------------------------------------------------------------------------


class IndexStoreError(QabotError):
    """An index problem that people can act on; the message says how (``qabot.index``)."""

    code = "index_error"


class IndexMissingError(IndexStoreError):
    """The index folder holds no finished version yet."""

    code = "index_missing"


class IndexMismatchError(IndexStoreError):
    """The index was built in an older format or with another embedder."""

    code = "index_mismatch"


class IndexBusyError(IndexStoreError):
    """Another process holds the index's writer lock."""

    code = "index_busy"


class IndexDamagedError(IndexStoreError):
    """No version of the index can be served (``qabot.index.loaded``); ``damage`` lists
    what is wrong with each version. ``qabot index build`` repairs it."""

    code = "index_damaged"

    def __init__(self, message: str, damage: list | None = None) -> None:
        super().__init__(message)
        self.damage = damage or []


# --- configuration and commands --------------------------------------------------------------


class EmbedderError(QabotError):
    """The embedder cannot be created: unknown name, missing model files
    (``qabot.embedding``)."""

    code = "embedder_error"


class BotConfigError(QabotError, ValueError):
    """The Telegram bot cannot start with this configuration; the message says what to set
    (``qabot.telegram``)."""

    code = "bot_config"


class ModelFileError(QabotError, ValueError):
    """A fitted-model file is unreadable, or fits features other than those the code
    computes (``qabot.fitted``); refit it with bench/fit_ranker.py."""

    code = "model_file"


class CalibrationError(QabotError, ValueError):
    """``qabot calibrate`` cannot fit a confidence model: too few reports or questions
    (``qabot.calibration``)."""

    code = "calibration"


class LogUnavailableError(QabotError, RuntimeError):
    """The question log is off or cannot be written right now, so feedback and the report
    cannot be had (``qabot.questionlog``, ``QAService.feedback`` and ``report``)."""

    code = "log_unavailable"


class CommandError(QabotError):
    """Ends a ``qabot`` command with a one-line message and exit status 1 (``qabot.cli``)."""

    code = "command_failed"
