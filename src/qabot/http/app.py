"""``create_app``: the FastAPI app over a loaded QAService, its middleware, error handlers
and routes."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from qabot.config import Settings
from qabot.http.access_log import AccessLogMiddleware
from qabot.http.admin import MAX_UPLOAD_FILES, UPLOAD_PATH, add_admin_routes
from qabot.http.body_limit import BodyLimitMiddleware
from qabot.http.errors import add_exception_handlers, error_responses
from qabot.http.head import HeadMiddleware
from qabot.http.insights import add_insight_routes
from qabot.http.ratelimit import RateLimitMiddleware
from qabot.http.routes import TOTAL_HEADER, add_document_routes, add_question_routes
from qabot.service import QAService

MAX_JSON_BODY_BYTES = 64 * 1024  # every route except uploads: questions are short
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # part headers and boundaries around the files

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
        responses=error_responses(500),  # any route, should a bug slip through
    )
    app.state.service = service
    app.state.settings = settings
    _add_middleware(app, settings)
    add_exception_handlers(app)
    add_question_routes(app, service)
    add_document_routes(app, service)
    add_admin_routes(app, service, settings)
    add_insight_routes(app, service, settings)  # last: its metrics middleware sees every answer
    return app


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    # add_middleware puts each one outside the previous: the access log sees every answer,
    # CORS headers reach the 413 answers too.
    upload_limit = settings.max_upload_bytes * MAX_UPLOAD_FILES + MULTIPART_OVERHEAD_BYTES
    app.add_middleware(HeadMiddleware)  # innermost: everything outside sees the HEAD
    app.add_middleware(
        BodyLimitMiddleware,
        default_limit=MAX_JSON_BODY_BYTES,
        upload_limit=upload_limit,
        upload_path=UPLOAD_PATH,
    )
    if settings.rate_limit > 0:  # outside the body limit: a refused client sends nothing more
        app.add_middleware(
            RateLimitMiddleware, per_minute=settings.rate_limit, burst=settings.rate_limit_burst
        )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=[TOTAL_HEADER],
        )
    app.add_middleware(AccessLogMiddleware)
