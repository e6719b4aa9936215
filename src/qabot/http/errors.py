"""Errors as JSON: every failure is answered with ``{"detail", "code"}``, where detail is a
Vietnamese message for people and code a stable English identifier for programs.

qabot's own errors (``qabot.errors``) carry their code; this module only picks the HTTP
status and, where the service's message names a server folder, a message without it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from qabot.http.schemas import (
    EXAMPLE_QUESTION,
    MAX_RADIUS,
    MAX_REINDEX_WAIT_SECONDS,
    ErrorOut,
)
from qabot.messages import INDEX_BUSY, INTERNAL_ERROR, NO_INDEX
from qabot.service import (
    MAX_DOCUMENTS_PAGE,
    MAX_TOP_K,
    BusyError,
    IndexBusyError,
    IndexStoreError,
    LibraryError,
    NotFoundError,
    NotReadyError,
    QabotError,
    QuestionError,
)

log = logging.getLogger("qabot.api")

BUSY_RETRY_SECONDS = "2"  # a long question's turn comes within a second or two

INVALID_JSON = (
    "Nội dung gửi lên không phải JSON hợp lệ (mã hóa UTF-8). Ví dụ đúng: "
    f'{{"question": "{EXAMPLE_QUESTION}", "top_k": 5}}.'
)

# Errors that Starlette or FastAPI raise themselves (unknown route, wrong method, ...).
GENERIC_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Yêu cầu không hợp lệ. Vui lòng kiểm tra lại dữ liệu gửi lên."),
    401: ("unauthorized", "Vui lòng xác thực trước khi thực hiện thao tác này."),
    403: ("forbidden", "Bạn không có quyền thực hiện thao tác này."),
    404: ("not_found", "Không tìm thấy địa chỉ này. Danh sách API có tại /docs."),
    405: ("method_not_allowed", "Địa chỉ này không hỗ trợ phương thức HTTP đã dùng."),
    413: ("body_too_large", "Nội dung gửi lên quá lớn."),
    415: ("unsupported_media_type", "Kiểu nội dung gửi lên không được hỗ trợ."),
}

# LibraryError codes (qabot.library, QAService) -> HTTP status.
LIBRARY_STATUS: dict[str, int] = {
    "invalid_name": 422,
    "unsupported_type": 422,
    "empty_file": 422,
    "unreadable": 422,
    "duplicate": 409,
    "exists": 409,
    "too_large": 413,
    "not_found": 404,
    "no_docs_dir": 503,
}

FIELD_LABELS: dict[str, str] = {
    "question": "câu hỏi «question»",
    "q": "câu hỏi «q»",
    "top_k": "số đoạn trích «top_k»",
    "radius": "số đoạn lân cận «radius»",
    "n": "số thứ tự đoạn «n»",
    "doc_id": "mã tài liệu «doc_id»",
    "wait": "thời gian chờ «wait»",
    "history": "lịch sử hội thoại «history»",
    "offset": "vị trí bắt đầu «offset»",
    "limit": "số tài liệu một trang «limit»",
}
FIELD_RANGES: dict[str, tuple[float, float]] = {
    "top_k": (1, MAX_TOP_K),
    "radius": (0, MAX_RADIUS),
    "wait": (0, MAX_REINDEX_WAIT_SECONDS),
    "limit": (1, MAX_DOCUMENTS_PAGE),
}
# On the report lists, «q» filters reports: it is no question there.
LIST_PATHS = ("/documents", "/admin/documents")
LIST_LABELS: dict[str, str] = {**FIELD_LABELS, "q": "từ khóa lọc «q»"}
RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})
OBJECT_ERRORS = frozenset({"model_attributes_type", "dict_type", "model_type"})

# What each documented error status means, for the OpenAPI schema.
ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Dữ liệu tải lên không đọc được (mã «invalid_form»): cần multipart/form-data.",
    401: "Thiếu hoặc sai mã quản trị.",
    403: "Chức năng quản trị đang tắt.",
    404: "Không tìm thấy tài liệu hoặc đoạn văn.",
    409: "Xung đột: tài liệu đã có hoặc chỉ mục đang được cập nhật.",
    413: "Nội dung hoặc tệp gửi lên quá lớn.",
    429: (
        "Quá nhiều yêu cầu từ cùng một địa chỉ (mã «rate_limited»); header «Retry-After» "
        "cho biết số giây cần đợi."
    ),
    422: (
        "Dữ liệu gửi lên không hợp lệ; «code» cho biết lỗi gì (ví dụ «missing_field», "
        "«out_of_range», «invalid_type», «invalid_json», «empty_question»)."
    ),
    500: "Lỗi hệ thống ngoài dự kiến.",
    503: (
        "Chưa có chỉ mục hoặc chỉ mục không dùng được; hoặc đang có quá nhiều câu hỏi rất dài "
        "chờ lượt (mã «busy», header «Retry-After»)."
    ),
}


class ApiError(HTTPException):
    """An HTTP error with a stable code. An HTTPException so FastAPI passes it through untouched
    even when raised while the body is being read (see BodyLimitMiddleware)."""

    def __init__(
        self, status_code: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.code = code


def error_response(
    status_code: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status_code, headers=headers)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of a route: these error statuses, each a documented ErrorOut."""
    return {s: _error_response(s) for s in statuses}


def _error_response(status: int) -> dict[str, Any]:
    documented: dict[str, Any] = {"model": ErrorOut, "description": ERROR_DESCRIPTIONS[status]}
    if status == 429:
        documented["headers"] = {
            "Retry-After": {
                "description": "Số giây cần đợi trước khi gửi yêu cầu tiếp theo.",
                "schema": {"type": "integer", "minimum": 1},
            }
        }
    return documented


def _sentence(label: str) -> str:
    return label[:1].upper() + label[1:]


def describe_validation_error(
    error: dict[str, Any], labels: dict[str, str] = FIELD_LABELS
) -> tuple[str, str]:
    """(code, Vietnamese message) for one pydantic/FastAPI validation error."""
    kind = str(error.get("type", ""))
    locations = ("body", "query", "path", "header")
    field = next(
        (p for p in reversed(error.get("loc", ())) if isinstance(p, str) and p not in locations),
        None,
    )
    label = labels.get(field, f"trường «{field}»") if field else None
    if kind == "json_invalid":
        return "invalid_json", INVALID_JSON
    if kind in OBJECT_ERRORS or (kind == "missing" and label is None):
        return "invalid_body", (
            "Nội dung gửi lên phải là một đối tượng JSON (Content-Type: application/json) có "
            f'trường «question», ví dụ {{"question": "{EXAMPLE_QUESTION}", "top_k": 5}}.'
        )
    label = label or "dữ liệu gửi lên"
    if kind == "missing":
        return "missing_field", f"Thiếu {label}. Vui lòng bổ sung rồi gửi lại."
    if kind in RANGE_ERRORS:
        low, high = FIELD_RANGES.get(field or "", (None, None))
        if low is None:
            return "out_of_range", f"{_sentence(label)} nằm ngoài khoảng cho phép."
        return "out_of_range", f"{_sentence(label)} phải nằm trong khoảng {low:g} đến {high:g}."
    if kind.startswith("int_"):
        return "invalid_type", f"{_sentence(label)} phải là số nguyên."
    if kind.startswith(("float_", "decimal_")):
        return "invalid_type", f"{_sentence(label)} phải là một số."
    if kind == "string_too_long":
        limit = (error.get("ctx") or {}).get("max_length")
        return "too_long", f"{_sentence(label)} chỉ được dài tối đa {limit} ký tự."
    if kind.startswith("string_"):
        return "invalid_type", f"{_sentence(label)} phải là chuỗi ký tự."
    if kind == "list_type":
        return "invalid_type", f"{_sentence(label)} phải là một danh sách."
    if kind == "too_long" and field:
        limit = (error.get("ctx") or {}).get("max_length")
        return f"{field}_too_long", f"{_sentence(label)} chỉ được gồm tối đa {limit} mục."
    return "invalid_request", f"{_sentence(label)} không hợp lệ."


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    labels = LIST_LABELS if request.url.path in LIST_PATHS else FIELD_LABELS
    described = [describe_validation_error(e, labels) for e in exc.errors()] or [
        ("invalid_request", "Dữ liệu gửi lên không hợp lệ.")
    ]
    messages = list(dict.fromkeys(message for _, message in described))[:3]
    return error_response(422, described[0][0], " ".join(messages))


async def http_error_handler(request: Request, exc: HTTPException) -> JSONResponse:
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.detail, exc.headers)
    if exc.status_code == 400 and isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI reports a JSON body that is not UTF-8 as a bare 400; it is invalid JSON.
        return error_response(422, "invalid_json", INVALID_JSON)
    code, detail = GENERIC_HTTP_ERRORS.get(
        exc.status_code, ("http_error", "Yêu cầu không thể xử lý. Vui lòng kiểm tra lại.")
    )
    return error_response(exc.status_code, code, detail, exc.headers)


async def qabot_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """qabot's own errors: the status by kind, the code from the error."""
    if isinstance(exc, BusyError):
        return error_response(503, exc.code, str(exc), {"Retry-After": BUSY_RETRY_SECONDS})
    if isinstance(exc, QuestionError):
        return error_response(422, exc.code, str(exc))
    if isinstance(exc, NotReadyError):
        # The service's own message names a server folder; people get a message without it.
        return error_response(503, "no_index", NO_INDEX)
    if isinstance(exc, NotFoundError):
        return error_response(404, "not_found", str(exc))
    if isinstance(exc, LibraryError):
        return error_response(LIBRARY_STATUS.get(exc.code, 400), exc.code, str(exc))
    if isinstance(exc, IndexBusyError):
        return error_response(409, "index_busy", INDEX_BUSY)
    if isinstance(exc, IndexStoreError):
        # The message is for the admin (it names folders and commands): logged, not sent.
        log.warning("index problem on %s: %s", request.url.path, exc)
        return error_response(
            503,
            "index_error",
            "Chỉ mục hiện không dùng được. Quản trị viên vui lòng kiểm tra nhật ký máy chủ.",
        )
    return await internal_error_handler(request, exc)


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", INTERNAL_ERROR)


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
    app.add_exception_handler(QabotError, qabot_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)
