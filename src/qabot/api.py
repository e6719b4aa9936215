"""The HTTP API: a thin FastAPI layer over QAService.

Everything here translates between HTTP and the service: it validates input, runs CPU work in
the threadpool and turns the service's exceptions into JSON errors {"detail", "code"} whose
detail is a Vietnamese message for people and whose code is a stable English identifier.
"""

import hmac
import logging
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qabot.config import Settings
from qabot.http.insights import add_insight_routes
from qabot.index import BuildSummary, IndexBusyError, IndexStoreError
from qabot.index.meta import DocumentInfo
from qabot.library import LibraryError, human_size
from qabot.service import (
    MAX_HISTORY,
    MAX_QUESTION_CHARS,
    MAX_TOP_K,
    NotFoundError,
    NotReadyError,
    ParagraphContext,
    QAService,
    QuestionError,
    clean_question,
)

log = logging.getLogger("qabot.api")

MAX_JSON_BODY_BYTES = 64 * 1024  # every route except uploads: questions are short
MAX_UPLOAD_FILES = 20
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # part headers and boundaries around the files
MAX_RADIUS = 5
DEFAULT_REINDEX_WAIT_SECONDS = 30.0
MAX_REINDEX_WAIT_SECONDS = 120.0
UPLOAD_PATH = "/documents"

EXAMPLE_QUESTION = "Đảng bộ có bao nhiêu đảng viên?"
EXAMPLE_DOC_ID = "2018-07-11-hai-phong-so-ket-6-thang-dau-nam.txt"

INTERNAL_ERROR = "Lỗi hệ thống, vui lòng thử lại sau."
NO_INDEX = (
    "Dịch vụ chưa sẵn sàng: chưa có chỉ mục tài liệu nào được nạp. "
    "Quản trị viên vui lòng tạo chỉ mục (lệnh: qabot index build) rồi thử lại."
)
INVALID_JSON = (
    "Nội dung gửi lên không phải JSON hợp lệ (mã hóa UTF-8). Ví dụ đúng: "
    '{"question": "Đảng bộ có bao nhiêu đảng viên?", "top_k": 5}.'
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
}
FIELD_RANGES: dict[str, tuple[float, float]] = {
    "top_k": (1, MAX_TOP_K),
    "radius": (0, MAX_RADIUS),
    "wait": (0, MAX_REINDEX_WAIT_SECONDS),
}
RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})
OBJECT_ERRORS = frozenset({"model_attributes_type", "dict_type", "model_type"})


# --- errors --------------------------------------------------------------------------------


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


def _sentence(label: str) -> str:
    return label[:1].upper() + label[1:]


def describe_validation_error(error: dict[str, Any]) -> tuple[str, str]:
    """(code, Vietnamese message) for one pydantic/FastAPI validation error."""
    kind = str(error.get("type", ""))
    locations = ("body", "query", "path", "header")
    field = next(
        (p for p in reversed(error.get("loc", ())) if isinstance(p, str) and p not in locations),
        None,
    )
    label = FIELD_LABELS.get(field, f"trường «{field}»") if field else None
    if kind == "json_invalid":
        return "invalid_json", INVALID_JSON
    if kind in OBJECT_ERRORS or (kind == "missing" and label is None):
        return "invalid_body", (
            "Nội dung gửi lên phải là một đối tượng JSON (Content-Type: application/json) có "
            'trường «question», ví dụ {"question": "Đảng bộ có bao nhiêu đảng viên?", "top_k": 5}.'
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
    if kind.startswith("string_"):
        return "invalid_type", f"{_sentence(label)} phải là chuỗi ký tự."
    if kind == "list_type":
        return "invalid_type", f"{_sentence(label)} phải là một danh sách."
    if kind == "too_long" and field:
        limit = (error.get("ctx") or {}).get("max_length")
        return f"{field}_too_long", f"{_sentence(label)} chỉ được gồm tối đa {limit} mục."
    return "invalid_request", f"{_sentence(label)} không hợp lệ."


async def validation_error_handler(request: Request, exc: RequestValidationError) -> JSONResponse:
    described = [describe_validation_error(e) for e in exc.errors()] or [
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


async def question_error_handler(request: Request, exc: QuestionError) -> JSONResponse:
    return error_response(422, exc.code, str(exc))


async def not_ready_handler(request: Request, exc: NotReadyError) -> JSONResponse:
    # The service's own message names a server folder; people get a message without it.
    return error_response(503, "no_index", NO_INDEX)


async def not_found_handler(request: Request, exc: NotFoundError) -> JSONResponse:
    return error_response(404, "not_found", str(exc))


async def library_error_handler(request: Request, exc: LibraryError) -> JSONResponse:
    return error_response(LIBRARY_STATUS.get(exc.code, 400), exc.code, str(exc))


async def index_busy_handler(request: Request, exc: IndexBusyError) -> JSONResponse:
    return error_response(
        409,
        "index_busy",
        "Chỉ mục đang được một tiến trình khác cập nhật. Vui lòng thử lại sau ít phút.",
    )


async def index_error_handler(request: Request, exc: IndexStoreError) -> JSONResponse:
    log.warning("index problem on %s: %s", request.url.path, exc)
    return error_response(
        503,
        "index_error",
        "Chỉ mục hiện không dùng được. Quản trị viên vui lòng kiểm tra nhật ký máy chủ.",
    )


async def internal_error_handler(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", INTERNAL_ERROR)


# --- middleware ----------------------------------------------------------------------------


def _route_path(scope: Scope) -> str:
    path: str = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """Refuses request bodies over a size limit: by Content-Length before the app runs, and
    while reading for chunked bodies, so an oversized body is never held in memory whole."""

    def __init__(self, app: ASGIApp, default_limit: int, upload_limit: int) -> None:
        self.app = app
        self.default_limit = default_limit
        self.upload_limit = upload_limit

    def limit_for(self, scope: Scope) -> int:
        is_upload = scope.get("method") == "POST" and _route_path(scope) == UPLOAD_PATH
        return self.upload_limit if is_upload else self.default_limit

    def too_large(self, limit: int) -> ApiError:
        detail = f"Nội dung gửi lên vượt quá giới hạn {human_size(limit)}. Vui lòng gửi ít hơn."
        return ApiError(413, "body_too_large", detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            error = self.too_large(limit)
            await error_response(413, error.code, error.detail)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the app's body read; the HTTPException handler answers 413.
                    raise self.too_large(limit)
            return message

        await self.app(scope, limited_receive, send)


class AccessLogMiddleware:
    """One INFO line per request. Logs the raw path only: never the query string, which for
    GET /ask holds the question."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app fails before answering, the error middleware sends a 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            # raw_path is still percent-encoded, so it cannot break the log line.
            raw_path = scope.get("raw_path") or scope.get("path", "").encode()
            path = raw_path.decode("ascii", "backslashreplace")
            elapsed_ms = (time.perf_counter() - started) * 1000
            log.info(
                "request method=%s path=%s status=%d ms=%.1f",
                scope["method"],
                path,
                status,
                elapsed_ms,
                extra={"method": scope["method"], "path": path, "status": status, "ms": elapsed_ms},
            )


# --- models (OpenAPI documentation; responses are built as plain JSON) ---------------------


class AskRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"question": EXAMPLE_QUESTION, "top_k": 5}]}
    )

    question: str = Field(
        description=f"Câu hỏi bằng tiếng Việt, tối đa {MAX_QUESTION_CHARS} ký tự.",
        examples=[EXAMPLE_QUESTION],
    )
    top_k: int = Field(
        5,
        ge=1,
        le=MAX_TOP_K,
        strict=True,  # JSON true or "5" is a client bug, not a number of passages
        description=f"Số đoạn trích dẫn tối đa trả về (1–{MAX_TOP_K}).",
    )
    history: list[str] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description=(
            "Các câu hỏi trước đó của cuộc hội thoại, cũ nhất trước "
            f"(tối đa {MAX_HISTORY}); câu hỏi nối tiếp như «Còn năm 2024 thì sao?» dựa vào đó."
        ),
    )


class CitedPassageOut(BaseModel):
    rank: int = Field(description="Thứ hạng của đoạn trích, bắt đầu từ 1.")
    text: str = Field(description="Nội dung đoạn trích.")
    score: float = Field(description="Điểm liên quan của đoạn trích với câu hỏi.")
    doc_id: str = Field(description="Mã tài liệu chứa đoạn trích.", examples=[EXAMPLE_DOC_ID])
    title: str = Field(description="Tiêu đề tài liệu.")
    date: str | None = Field(description="Ngày của tài liệu (YYYY-MM-DD), nếu xác định được.")
    source: str = Field(description="Tệp nguồn của tài liệu.")
    paragraph: int = Field(description="Số thứ tự đoạn văn trong tài liệu, bắt đầu từ 1.")
    highlight: list[int] | None = Field(
        description="Vị trí [bắt đầu, kết thúc) của câu trả lời ngắn trong «text», nếu có."
    )


class AnswerOut(BaseModel):
    question: str = Field(description="Câu hỏi sau khi đã chuẩn hóa.")
    found: bool = Field(description="Có tìm thấy thông tin trả lời trong các báo cáo hay không.")
    answer: str = Field(description="Câu trả lời ngắn trích từ báo cáo; rỗng khi không tìm thấy.")
    passages: list[CitedPassageOut] = Field(
        description="Các đoạn trích dẫn, xếp theo mức liên quan."
    )
    took_ms: float = Field(description="Thời gian tìm kiếm, tính bằng mili giây.")
    interpreted_question: str = Field(
        description=(
            "Câu hỏi đã được tìm: câu hỏi nối tiếp được viết lại đầy đủ, dấu tiếng Việt được "
            "khôi phục; bằng «question» khi không có gì thay đổi."
        )
    )
    answer_id: str | None = Field(
        description="Mã câu trả lời, dùng để gửi phản hồi tới `POST /feedback`; null khi "
        "nhật ký câu hỏi đang tắt."
    )


class HealthOut(BaseModel):
    status: str = Field(description="«ok» khi dịch vụ sẵn sàng.", examples=["ok"])
    version: str = Field(description="Phiên bản chỉ mục đang dùng.")
    documents: int = Field(description="Số tài liệu trong chỉ mục.")
    passages: int = Field(description="Số đoạn trích trong chỉ mục.")
    embedder: str = Field(description="Mô hình tạo vector đang dùng.")
    uptime_seconds: float = Field(description="Thời gian dịch vụ đã chạy, tính bằng giây.")


class DocumentOut(BaseModel):
    doc_id: str = Field(description="Mã tài liệu (đường dẫn tệp trong thư mục tài liệu).")
    title: str = Field(description="Tiêu đề tài liệu.")
    date: str | None = Field(description="Ngày của tài liệu (YYYY-MM-DD), nếu xác định được.")
    source: str = Field(description="Tệp nguồn của tài liệu.")
    passages: int = Field(description="Số đoạn trích của tài liệu trong chỉ mục.")
    paragraphs: int = Field(description="Số đoạn văn của tài liệu.")


class ParagraphOut(BaseModel):
    number: int = Field(description="Số thứ tự đoạn văn, bắt đầu từ 1.")
    kind: str = Field(description="Loại đoạn văn (ví dụ: đoạn thường hoặc chú thích ảnh).")
    text: str = Field(description="Nội dung đoạn văn.")


class ParagraphContextOut(BaseModel):
    document: DocumentOut = Field(description="Tài liệu chứa đoạn văn.")
    paragraph: int = Field(description="Số thứ tự đoạn văn được hỏi.")
    paragraphs: list[ParagraphOut] = Field(description="Đoạn văn được hỏi cùng các đoạn lân cận.")


class SkippedFileOut(BaseModel):
    source: str
    reason: str


class BuildSummaryOut(BaseModel):
    documents: int = Field(description="Số tài liệu trong chỉ mục mới.")
    passages: int = Field(description="Số đoạn trích trong chỉ mục mới.")
    embedded: int = Field(description="Số đoạn trích vừa tạo vector mới.")
    reused: int = Field(description="Số vector dùng lại từ bộ nhớ đệm.")
    skipped: int = Field(description="Số tệp bị bỏ qua.")
    seconds: float = Field(description="Thời gian cập nhật, tính bằng giây.")
    added: int = Field(description="Số tài liệu được thêm.")
    changed: int = Field(description="Số tài liệu thay đổi nội dung.")
    removed: int = Field(description="Số tài liệu bị xóa.")
    unchanged: int = Field(description="Số tài liệu giữ nguyên.")
    version: str | None = Field(description="Phiên bản chỉ mục sau khi cập nhật.")
    published: bool = Field(description="Có phát hành phiên bản chỉ mục mới hay không.")
    skipped_files: list[SkippedFileOut] = Field(description="Các tệp bị bỏ qua và lý do.")


class ChangeOut(BaseModel):
    doc_ids: list[str] = Field(description="Mã các tài liệu vừa được thêm hoặc xóa.")
    summary: BuildSummaryOut = Field(description="Kết quả cập nhật chỉ mục.")


class ReindexOut(BaseModel):
    summary: BuildSummaryOut = Field(description="Kết quả cập nhật chỉ mục.")


class ErrorOut(BaseModel):
    detail: str = Field(description="Thông báo lỗi bằng tiếng Việt.")
    code: str = Field(description="Mã lỗi ổn định (tiếng Anh), dùng cho chương trình.")


DocIdParam = Annotated[
    str,
    Path(
        description="Mã tài liệu (tên tệp trong thư mục tài liệu), như trong `/documents`.",
        examples=[EXAMPLE_DOC_ID],
    ),
]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        401: "Thiếu hoặc sai mã quản trị.",
        403: "Chức năng quản trị đang tắt.",
        404: "Không tìm thấy tài liệu hoặc đoạn văn.",
        409: "Xung đột: tài liệu đã có hoặc chỉ mục đang được cập nhật.",
        413: "Nội dung hoặc tệp gửi lên quá lớn.",
        422: "Dữ liệu gửi lên không hợp lệ.",
        503: "Chưa có chỉ mục hoặc chỉ mục không dùng được.",
    }
    return {s: {"model": ErrorOut, "description": descriptions[s]} for s in statuses}


# --- conversions ---------------------------------------------------------------------------


def document_dict(document: DocumentInfo) -> dict[str, Any]:
    # content_hash is an internal detail of the index.
    return {
        "doc_id": document.doc_id,
        "title": document.title,
        "date": document.date,
        "source": document.source,
        "passages": document.passages,
        "paragraphs": document.paragraphs,
    }


def context_dict(context: ParagraphContext) -> dict[str, Any]:
    return {
        "document": document_dict(context.document),
        "paragraph": context.paragraph,
        "paragraphs": [
            {"number": p.number, "kind": p.kind, "text": p.text} for p in context.paragraphs
        ],
    }


def change_dict(doc_ids: list[str], summary: BuildSummary) -> dict[str, Any]:
    return {"doc_ids": doc_ids, "summary": summary.as_dict()}


# --- admin ---------------------------------------------------------------------------------

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="Mã quản trị (QABOT_ADMIN_TOKEN), gửi dưới dạng «Authorization: Bearer <mã>».",
)


def admin_guard(settings: Settings) -> Callable[..., Awaitable[None]]:
    """A dependency that lets a request through only with the configured admin token."""
    secret = settings.admin_token.get_secret_value() if settings.admin_token else ""
    expected = secret.encode("utf-8")

    async def require_admin(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> None:
        if not expected:
            raise ApiError(
                403,
                "admin_disabled",
                "Chức năng quản trị đang tắt vì máy chủ chưa cấu hình mã quản trị "
                "(QABOT_ADMIN_TOKEN).",
            )
        if credentials is None:
            raise ApiError(
                401,
                "missing_token",
                "Vui lòng gửi mã quản trị trong tiêu đề «Authorization: Bearer <mã>».",
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Bytes: compare_digest refuses non-ASCII str, and a client may send anything.
        given = credentials.credentials.encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(given, expected):
            raise ApiError(
                401,
                "invalid_token",
                "Mã quản trị không đúng.",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )

    return require_admin


async def read_uploads(request: Request, max_bytes: int) -> list[tuple[str, bytes]]:
    """The files of a multipart upload, each read with a cap so an oversized one is refused
    without being loaded into memory whole."""
    try:
        form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES)
    except ApiError:
        raise
    except HTTPException as exc:  # Starlette reports malformed multipart data as a bare 400
        raise ApiError(
            400,
            "invalid_form",
            "Không đọc được dữ liệu tải lên. Vui lòng gửi multipart/form-data với các tệp "
            f"trong trường «files» (tối đa {MAX_UPLOAD_FILES} tệp mỗi lần).",
        ) from exc
    try:
        return await _read_files(form, max_bytes)
    finally:
        await form.close()


async def _read_files(form: FormData, max_bytes: int) -> list[tuple[str, bytes]]:
    uploads = form.getlist("files")
    if not uploads:
        raise ApiError(
            422,
            "no_files",
            "Vui lòng đính kèm ít nhất một tệp trong trường «files» (multipart/form-data).",
        )
    files = []
    for upload in uploads:
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "invalid_form", "Trường «files» phải chứa tệp, không phải văn bản.")
        name = upload.filename or ""
        too_large = ApiError(
            413,
            "too_large",
            f"Tệp {name!r} vượt quá giới hạn {human_size(max_bytes)} cho mỗi tệp tải lên.",
        )
        if upload.size is not None and upload.size > max_bytes:
            raise too_large
        data = await upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise too_large
        files.append((name, data))
    return files


# --- the app -------------------------------------------------------------------------------

DESCRIPTION = """
Hỏi đáp tiếng Việt trên các báo cáo của tổ chức, kèm trích dẫn nguồn.

* **Hỏi đáp**: gửi câu hỏi tới `POST /ask` (hoặc `GET /ask?q=...`); kết quả gồm câu trả lời
  ngắn và các đoạn trích dẫn (tài liệu, ngày, tệp nguồn, số đoạn).
* **Tài liệu**: xem danh sách tài liệu và đọc một đoạn văn cùng các đoạn lân cận.
* **Quản trị**: tải lên, xóa tài liệu và cập nhật chỉ mục; cần mã quản trị
  (`Authorization: Bearer <mã>`).

Mọi lỗi trả về JSON dạng `{"detail": "<thông báo>", "code": "<mã lỗi>"}`.
"""

TAGS = [
    {"name": "Hỏi đáp", "description": "Đặt câu hỏi và nhận câu trả lời có trích dẫn."},
    {"name": "Tài liệu", "description": "Các tài liệu đã được lập chỉ mục."},
    {"name": "Quản trị", "description": "Cập nhật thư viện tài liệu; cần mã quản trị."},
    {"name": "Hệ thống", "description": "Tình trạng dịch vụ."},
]


def _app_version() -> str:
    try:
        return package_version("qabot")
    except PackageNotFoundError:
        return "0"


def create_app(service: QAService, settings: Settings) -> FastAPI:
    """The FastAPI app over an already loaded service; a request never loads a model."""
    app = FastAPI(
        title="qabot API",
        description=DESCRIPTION,
        version=_app_version(),
        openapi_tags=TAGS,
    )
    app.state.service = service
    app.state.settings = settings
    _add_middleware(app, settings)
    _add_exception_handlers(app)
    _add_question_routes(app, service)
    _add_document_routes(app, service)
    _add_admin_routes(app, service, settings)
    add_insight_routes(app, service, settings)  # last: its metrics middleware sees every answer
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # add_middleware puts each one outside the previous: the access log sees every answer,
    # CORS headers reach the 413 answers too.
    upload_limit = settings.max_upload_bytes * MAX_UPLOAD_FILES + MULTIPART_OVERHEAD_BYTES
    app.add_middleware(
        BodyLimitMiddleware, default_limit=MAX_JSON_BODY_BYTES, upload_limit=upload_limit
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(AccessLogMiddleware)


def _add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(HTTPException, http_error_handler)
    app.add_exception_handler(QuestionError, question_error_handler)
    app.add_exception_handler(NotReadyError, not_ready_handler)
    app.add_exception_handler(NotFoundError, not_found_handler)
    app.add_exception_handler(LibraryError, library_error_handler)
    app.add_exception_handler(IndexBusyError, index_busy_handler)
    app.add_exception_handler(IndexStoreError, index_error_handler)
    app.add_exception_handler(Exception, internal_error_handler)


def _add_question_routes(app: FastAPI, service: QAService) -> None:
    def answer(question: str, top_k: int, history: list[str] | None = None) -> JSONResponse:
        text = clean_question(question)  # cheap checks first; QuestionError -> 422
        return JSONResponse(service.ask(text, top_k, history).to_dict())

    # Sync endpoints: FastAPI runs them in its threadpool, so searching never blocks the loop.
    @app.post(
        "/ask",
        tags=["Hỏi đáp"],
        summary="Đặt câu hỏi",
        description="Tìm câu trả lời trong các báo cáo và trả về các đoạn trích dẫn.",
        response_model=AnswerOut,
        responses=_errors(413, 422, 503),
    )
    def ask_post(body: AskRequest) -> JSONResponse:
        return answer(body.question, body.top_k, body.history)

    @app.get(
        "/ask",
        tags=["Hỏi đáp"],
        summary="Đặt câu hỏi (GET)",
        description="Như `POST /ask`, với câu hỏi trong tham số «q».",
        response_model=AnswerOut,
        responses=_errors(422, 503),
    )
    def ask_get(
        q: Annotated[
            str,
            Query(
                description=f"Câu hỏi bằng tiếng Việt, tối đa {MAX_QUESTION_CHARS} ký tự.",
                examples=[EXAMPLE_QUESTION],
            ),
        ],
        top_k: Annotated[
            int, Query(ge=1, le=MAX_TOP_K, description="Số đoạn trích dẫn tối đa trả về.")
        ] = 5,
    ) -> JSONResponse:
        return answer(q, top_k)

    @app.get(
        "/health",
        tags=["Hệ thống"],
        summary="Tình trạng dịch vụ",
        description="Trả về 503 khi chưa có chỉ mục nào được nạp.",
        response_model=HealthOut,
        responses=_errors(503),
    )
    async def health() -> JSONResponse:
        status = service.status()
        if status.get("version") is None:
            raise ApiError(503, "no_index", NO_INDEX)
        fields = ("status", "version", "documents", "passages", "embedder", "uptime_seconds")
        return JSONResponse({key: status[key] for key in fields})


def _add_document_routes(app: FastAPI, service: QAService) -> None:
    @app.get(
        "/documents",
        tags=["Tài liệu"],
        summary="Danh sách tài liệu",
        description="Các tài liệu đang có trong chỉ mục.",
        response_model=list[DocumentOut],
        responses=_errors(503),
    )
    def list_documents() -> JSONResponse:
        return JSONResponse([document_dict(d) for d in service.documents()])

    @app.get(
        "/documents/{doc_id:path}/paragraphs/{n}",
        tags=["Tài liệu"],
        summary="Một đoạn văn và các đoạn lân cận",
        description=(
            "Đoạn văn số «n» của tài liệu (như trong trích dẫn của `/ask`) cùng «radius» đoạn "
            f"trước và sau. Ví dụ: `/documents/{EXAMPLE_DOC_ID}/paragraphs/2`."
        ),
        response_model=ParagraphContextOut,
        responses=_errors(404, 422, 503),
    )
    def paragraph(
        doc_id: DocIdParam,
        n: Annotated[int, Path(description="Số thứ tự đoạn văn, bắt đầu từ 1.", examples=[2])],
        radius: Annotated[
            int,
            Query(ge=0, le=MAX_RADIUS, description="Số đoạn lân cận mỗi phía (0–5)."),
        ] = 1,
    ) -> JSONResponse:
        return JSONResponse(context_dict(service.paragraph_context(doc_id, n, radius)))


def _add_admin_routes(app: FastAPI, service: QAService, settings: Settings) -> None:
    admin = [Depends(admin_guard(settings))]
    admin_errors = _errors(401, 403, 409, 503)

    # Async with no body parameters: the token is checked before the upload is read.
    @app.post(
        UPLOAD_PATH,
        tags=["Quản trị"],
        summary="Tải lên tài liệu",
        description=(
            "Tải lên một hoặc nhiều tệp (.txt, .md, .html, .docx, .pdf) trong trường «files»; "
            "chỉ mục được cập nhật ngay. Tệp lỗi làm cả lượt tải lên bị từ chối."
        ),
        status_code=201,
        dependencies=admin,
        response_model=ChangeOut,
        responses={**admin_errors, **_errors(413, 422)},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["files"],
                            "properties": {
                                "files": {
                                    "type": "array",
                                    "items": {"type": "string", "format": "binary"},
                                    "description": "Các tệp báo cáo cần thêm.",
                                }
                            },
                        }
                    }
                },
            }
        },
    )
    async def upload_documents(request: Request) -> JSONResponse:
        files = await read_uploads(request, settings.max_upload_bytes)
        added, summary = await run_in_threadpool(service.add_documents, files)
        return JSONResponse(change_dict([a.doc_id for a in added], summary), status_code=201)

    @app.delete(
        "/documents/{doc_id:path}",
        tags=["Quản trị"],
        summary="Xóa tài liệu",
        description="Xóa tệp của tài liệu khỏi thư mục tài liệu và cập nhật chỉ mục.",
        dependencies=admin,
        response_model=ChangeOut,
        responses={**admin_errors, **_errors(404, 422)},
    )
    def delete_document(doc_id: DocIdParam) -> JSONResponse:
        summary = service.remove_documents([doc_id])
        return JSONResponse(change_dict([doc_id], summary))

    @app.post(
        "/reindex",
        tags=["Quản trị"],
        summary="Cập nhật chỉ mục",
        description="Đồng bộ chỉ mục với thư mục tài liệu (chỉ tạo vector cho phần thay đổi).",
        dependencies=admin,
        response_model=ReindexOut,
        responses=admin_errors,
    )
    def reindex(
        wait: Annotated[
            float,
            Query(
                ge=0,
                le=MAX_REINDEX_WAIT_SECONDS,
                description="Số giây tối đa chờ nếu một lần cập nhật khác đang chạy.",
            ),
        ] = DEFAULT_REINDEX_WAIT_SECONDS,
    ) -> JSONResponse:
        return JSONResponse({"summary": service.rebuild(wait_seconds=wait).as_dict()})


# --- serving -------------------------------------------------------------------------------


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind before uvicorn starts, so port 0 works and the real port can be announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def public_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _configure_logging(level_name: str) -> None:
    level = logging.getLevelName(level_name.upper())
    level = level if isinstance(level, int) else logging.INFO
    # A no-op when the CLI has configured logging; needed when serve() is called directly.
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The root may be at WARNING (the CLI's default); request lines are INFO.
    logging.getLogger("qabot").setLevel(level)


def _announce(url: str) -> None:
    body = f'{{"question": "{EXAMPLE_QUESTION}", "top_k": 5}}'
    print(f"qabot API đang chạy tại {url} (tài liệu API: {url}/docs). Nhấn Ctrl+C để dừng.")
    print(f"Thử: curl -s {url}/ask -H 'Content-Type: application/json' -d '{body}'", flush=True)
    log.info("serving on %s", url)


def attach_telegram_webhook(app: FastAPI, service: QAService, settings: Settings) -> bool:
    """Serve the Telegram bot's webhook from this app (POST /telegram/<secret>) when
    QABOT_TELEGRAM_WEBHOOK_URL and QABOT_TELEGRAM_TOKEN are set; the app's lifespan then
    starts the bot and registers the webhook with Telegram. True when attached."""
    if not (settings.telegram_webhook_url and settings.telegram_token):
        return False
    from qabot.telegram import build_application
    from qabot.telegram.webhook import mount_webhook, webhook_lifespan

    application = build_application(service, settings)
    mount_webhook(app, application, settings)
    app.router.lifespan_context = lambda _app: webhook_lifespan(application, settings)
    return True


def serve(
    service: QAService, settings: Settings, host: str, port: int, watch_docs: bool = False
) -> int:
    """Run the API with uvicorn until interrupted; the exit status for the command line."""
    from qabot.telegram.app import BotConfigError

    _configure_logging(settings.log_level)
    try:
        sock = bind_socket(host, port)
    except OSError as exc:
        print(f"Lỗi: không mở được địa chỉ {host}:{port} ({exc.strerror or exc}).", file=sys.stderr)
        return 1
    try:
        app = create_app(service, settings)
        if attach_telegram_webhook(app, service, settings):
            log.info("Telegram webhook served at /telegram/<secret>")
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=settings.log_level.lower(),
            access_log=False,  # it logs the query string, i.e. the question; ours does not
            timeout_graceful_shutdown=10,
        )
        server = uvicorn.Server(config)
        service.watch(settings.reload_seconds)  # a new index version is served without restart
        if watch_docs:
            service.watch_docs(settings.reload_seconds)
        if service.index is None:
            print(
                "Cảnh báo: chưa có chỉ mục tài liệu; /ask sẽ trả lỗi 503 cho tới khi chỉ mục "
                "được tạo (lệnh: qabot index build).",
                file=sys.stderr,
            )
        _announce(public_url(host, sock.getsockname()[1]))
        server.run(sockets=[sock])
        return 0 if server.started else 1
    except (LibraryError, BotConfigError) as exc:  # no docs folder to watch; webhook settings
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    finally:
        service.close()
        sock.close()
