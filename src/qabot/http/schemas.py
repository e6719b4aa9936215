"""Request and response models: what the API accepts and sends, as OpenAPI documents it.

Routes build their answers from these models, so FastAPI checks every answer against the
schema it publishes. The limits the routes enforce live here too.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from qabot.service import (
    MAX_HISTORY,
    MAX_QUESTION_CHARS,
    MAX_TOP_K,
    Answer,
    BuildSummary,
    DocumentInfo,
    ParagraphContext,
)

MAX_RADIUS = 5
DEFAULT_REINDEX_WAIT_SECONDS = 30.0
MAX_REINDEX_WAIT_SECONDS = 120.0

EXAMPLE_QUESTION = "Đảng bộ có bao nhiêu đảng viên?"
EXAMPLE_DOC_ID = "2018-07-11-hai-phong-so-ket-6-thang-dau-nam.txt"


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

    @classmethod
    def of(cls, answer: Answer) -> AnswerOut:
        # Read from the dataclasses' attributes: a sixth of the cost of copying them into
        # dicts first (dataclasses.asdict), on the path of every answer.
        return cls.model_validate(answer, from_attributes=True)


class HealthOut(BaseModel):
    status: str = Field(description="«ok» khi dịch vụ sẵn sàng.", examples=["ok"])
    version: str = Field(description="Phiên bản chỉ mục đang dùng.")
    documents: int = Field(description="Số tài liệu trong chỉ mục.")
    passages: int = Field(description="Số đoạn trích trong chỉ mục.")
    embedder: str = Field(description="Mô hình tạo vector đang dùng.")
    uptime_seconds: float = Field(description="Thời gian dịch vụ đã chạy, tính bằng giây.")
    calibration: str = Field(
        description=(
            "«fitted»: «found» do mô hình độ tin cậy được hiệu chỉnh cho mô hình tạo vector này "
            "quyết định; «rank-only»: chưa hiệu chỉnh (lệnh qabot calibrate), «found» theo quy "
            "tắc xếp hạng từ vựng."
        ),
        examples=["fitted"],
    )


class DocumentOut(BaseModel):
    doc_id: str = Field(description="Mã tài liệu (đường dẫn tệp trong thư mục tài liệu).")
    title: str = Field(description="Tiêu đề tài liệu.")
    date: str | None = Field(description="Ngày của tài liệu (YYYY-MM-DD), nếu xác định được.")
    source: str = Field(description="Tệp nguồn của tài liệu.")
    passages: int = Field(description="Số đoạn trích của tài liệu trong chỉ mục.")
    paragraphs: int = Field(description="Số đoạn văn của tài liệu.")

    @classmethod
    def of(cls, document: DocumentInfo) -> DocumentOut:
        # content_hash is an internal detail of the index.
        return cls(
            doc_id=document.doc_id,
            title=document.title,
            date=document.date,
            source=document.source,
            passages=document.passages,
            paragraphs=document.paragraphs,
        )


class ParagraphOut(BaseModel):
    number: int = Field(description="Số thứ tự đoạn văn, bắt đầu từ 1.")
    kind: str = Field(description="Loại đoạn văn (ví dụ: đoạn thường hoặc chú thích ảnh).")
    text: str = Field(description="Nội dung đoạn văn.")


class ParagraphContextOut(BaseModel):
    document: DocumentOut = Field(description="Tài liệu chứa đoạn văn.")
    paragraph: int = Field(description="Số thứ tự đoạn văn được hỏi.")
    paragraphs: list[ParagraphOut] = Field(description="Đoạn văn được hỏi cùng các đoạn lân cận.")

    @classmethod
    def of(cls, context: ParagraphContext) -> ParagraphContextOut:
        return cls(
            document=DocumentOut.of(context.document),
            paragraph=context.paragraph,
            paragraphs=[
                ParagraphOut(number=p.number, kind=p.kind, text=p.text) for p in context.paragraphs
            ],
        )


class SkippedFileOut(BaseModel):
    source: str = Field(description="Mã tài liệu (tệp) bị bỏ qua.")
    reason: str = Field(description="Lý do bỏ qua, bằng tiếng Việt.")


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

    @classmethod
    def of(cls, summary: BuildSummary) -> BuildSummaryOut:
        return cls.model_validate(summary.as_dict())


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
