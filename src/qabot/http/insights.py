"""What people ask, for admins: POST /feedback, GET /admin/stats and GET /metrics.

Errors follow the API's shape {"detail": Vietnamese message, "code": stable identifier}.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Query
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from qabot.config import Settings
from qabot.http.admin import admin_guard
from qabot.http.errors import ApiError, error_responses
from qabot.http.metrics import install_metrics
from qabot.service import (
    MAX_COMMENT_CHARS,
    LogUnavailableError,
    NotFoundError,
    QAService,
    parse_period,
)

LOG_OFF = (
    "Chức năng ghi nhận câu hỏi và phản hồi đang tắt hoặc tạm thời không dùng được "
    "(QABOT_LOG_DB). Vui lòng liên hệ quản trị viên."
)


class FeedbackIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"answer_id": "Qx3v9kLm0aZb", "helpful": False, "comment": "Số liệu chưa đúng"}
            ]
        }
    )

    answer_id: str = Field(
        min_length=1, max_length=64, description="Mã câu trả lời «answer_id» do `/ask` trả về."
    )
    helpful: bool = Field(strict=True, description="true: câu trả lời hữu ích; false: sai.")
    comment: str | None = Field(
        None,
        max_length=MAX_COMMENT_CHARS,
        description=f"Góp ý thêm (không bắt buộc), tối đa {MAX_COMMENT_CHARS} ký tự.",
    )


class FeedbackOut(BaseModel):
    stored: bool = Field(description="Phản hồi đã được lưu cùng câu hỏi.")


def add_insight_routes(app: FastAPI, service: QAService, settings: Settings) -> None:
    """POST /feedback, GET /admin/stats, GET /metrics, and the metrics middleware."""
    registry = install_metrics(app, service)

    @app.post(
        "/feedback",
        tags=["Hỏi đáp"],
        summary="Phản hồi về một câu trả lời",
        description="Đánh dấu câu trả lời (theo «answer_id» của `/ask`) là hữu ích hay sai.",
        response_model=FeedbackOut,
        responses=error_responses(404, 413, 422, 429, 503),
    )
    def feedback(body: FeedbackIn) -> FeedbackOut:
        try:
            service.feedback(body.answer_id, body.helpful, body.comment)
        except NotFoundError:
            raise ApiError(
                404,
                "unknown_answer",
                "Không tìm thấy câu trả lời có mã này (có thể đã quá thời hạn lưu). "
                "Vui lòng dùng «answer_id» do /ask trả về.",
            ) from None
        except LogUnavailableError:
            raise ApiError(503, "log_unavailable", LOG_OFF) from None
        return FeedbackOut(stored=True)

    @app.get(
        "/admin/stats",
        tags=["Quản trị"],
        summary="Thống kê câu hỏi",
        description=(
            "Số câu hỏi theo ngày và kênh, tỷ lệ tìm thấy, thời gian trả lời, câu hỏi nhiều "
            "nhất, câu hỏi chưa có câu trả lời (gộp câu gần giống nhau), câu trả lời bị đánh "
            "dấu sai và báo cáo được trích dẫn nhiều / ít nhất."
        ),
        dependencies=[Depends(admin_guard(settings))],
        responses=error_responses(401, 403, 422, 503),
    )
    def admin_stats(
        since: Annotated[
            str, Query(description="Khoảng thời gian gần nhất: 30d (ngày), 12h (giờ), 2w (tuần).")
        ] = "30d",
    ) -> JSONResponse:
        try:
            period = parse_period(since)
        except ValueError:
            raise ApiError(
                422,
                "invalid_period",
                "Khoảng thời gian «since» không hợp lệ; ví dụ: 30d (ngày), 12h (giờ), 2w (tuần).",
            ) from None
        try:
            return JSONResponse(service.report(period))
        except LogUnavailableError:
            raise ApiError(503, "log_unavailable", LOG_OFF) from None

    @app.get(
        "/metrics",
        tags=["Hệ thống"],
        summary="Số liệu Prometheus",
        description="Số liệu vận hành theo định dạng văn bản của Prometheus.",
        response_class=Response,
        responses={
            200: {
                "description": "Số liệu theo định dạng văn bản của Prometheus.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
