"""The admin endpoints (upload, delete, reindex): the token check and the upload reader."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from qabot.config import Settings, admin_token_matches
from qabot.http.errors import ApiError, error_responses
from qabot.http.schemas import (
    DEFAULT_REINDEX_WAIT_SECONDS,
    MAX_REINDEX_WAIT_SECONDS,
    BuildSummaryOut,
    ChangeOut,
    DocIdParam,
    ReindexOut,
)
from qabot.messages import human_size
from qabot.service import IndexBusyError, QAService

MAX_UPLOAD_FILES = 20
UPLOAD_PATH = "/documents"
# How long an upload or a removal waits for another update of the index to finish.
CHANGE_WAIT_SECONDS = 60.0

T = TypeVar("T")


class IndexWrites:
    """This app's updates of the index, one at a time. Requests wait for their turn in the
    event loop, not in a request thread: 45 parallel `POST /reindex?wait=15` once took every
    thread of the pool, so /ask waited for them. Only the update whose turn it is holds a
    thread (and waits there, for what remains of its time, if a command-line build holds
    the index folder's lock).

    A flag checked every POLL_SECONDS rather than an asyncio.Lock under wait_for: a timeout
    that fires as the lock is granted could leave it held for ever (Python < 3.12)."""

    POLL_SECONDS = 0.05

    def __init__(self) -> None:
        self._busy = False

    async def run(self, wait_seconds: float, update: Callable[[float], T]) -> T:
        """``update(seconds left to wait)`` in a worker thread once no other update of this
        app runs; IndexBusyError when that takes longer than ``wait_seconds``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while self._busy:  # checked and set with no await between: the loop is one thread
            left = deadline - loop.time()
            if left <= 0:
                raise IndexBusyError("another update of the index is running")
            await asyncio.sleep(min(self.POLL_SECONDS, left))
        self._busy = True
        try:
            left = max(0.0, deadline - loop.time())
            return await run_in_threadpool(update, left)
        finally:
            self._busy = False


bearer_scheme = HTTPBearer(
    auto_error=False,
    description="Mã quản trị (QABOT_ADMIN_TOKEN), gửi dưới dạng «Authorization: Bearer <mã>».",
)


def admin_guard(settings: Settings) -> Callable[..., Awaitable[None]]:
    """A dependency that lets a request through only with the configured admin token."""
    enabled = bool(settings.admin_token and settings.admin_token.get_secret_value())

    async def require_admin(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> None:
        if not enabled:
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
        if not admin_token_matches(settings, credentials.credentials):
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


UPLOAD_BODY = {
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


def add_admin_routes(app: FastAPI, service: QAService, settings: Settings) -> None:
    admin = [Depends(admin_guard(settings))]
    admin_errors = error_responses(401, 403, 409, 503)
    writes = IndexWrites()

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
        responses={**admin_errors, **error_responses(400, 413, 422)},
        openapi_extra={"requestBody": UPLOAD_BODY},
    )
    async def upload_documents(request: Request) -> ChangeOut:
        files = await read_uploads(request, settings.max_upload_bytes)
        added, summary = await writes.run(
            CHANGE_WAIT_SECONDS, lambda wait: service.add_documents(files, wait_seconds=wait)
        )
        return ChangeOut(doc_ids=[a.doc_id for a in added], summary=BuildSummaryOut.of(summary))

    @app.delete(
        "/documents/{doc_id:path}",
        tags=["Quản trị"],
        summary="Xóa tài liệu",
        description="Xóa tệp của tài liệu khỏi thư mục tài liệu và cập nhật chỉ mục.",
        dependencies=admin,
        response_model=ChangeOut,
        responses={**admin_errors, **error_responses(404, 422)},
    )
    async def delete_document(doc_id: DocIdParam) -> ChangeOut:
        summary = await writes.run(
            CHANGE_WAIT_SECONDS, lambda wait: service.remove_documents([doc_id], wait)
        )
        return ChangeOut(doc_ids=[doc_id], summary=BuildSummaryOut.of(summary))

    @app.post(
        "/reindex",
        tags=["Quản trị"],
        summary="Cập nhật chỉ mục",
        description="Đồng bộ chỉ mục với thư mục tài liệu (chỉ tạo vector cho phần thay đổi).",
        dependencies=admin,
        response_model=ReindexOut,
        responses={**admin_errors, **error_responses(422)},
    )
    async def reindex(
        wait: Annotated[
            float,
            Query(
                ge=0,
                le=MAX_REINDEX_WAIT_SECONDS,
                description="Số giây tối đa chờ nếu một lần cập nhật khác đang chạy.",
            ),
        ] = DEFAULT_REINDEX_WAIT_SECONDS,
    ) -> ReindexOut:
        summary = await writes.run(wait, lambda left: service.rebuild(wait_seconds=left))
        return ReindexOut(summary=BuildSummaryOut.of(summary))
