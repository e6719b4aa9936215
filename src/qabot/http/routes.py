"""The public endpoints: questions (/ask), service health and the documents' paragraphs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import FastAPI, Header, Path, Query, Response
from starlette.concurrency import run_in_threadpool

from qabot.http.errors import ApiError, error_responses
from qabot.http.schemas import (
    EXAMPLE_DOC_ID,
    EXAMPLE_QUESTION,
    MAX_RADIUS,
    AnswerOut,
    AskRequest,
    DocIdParam,
    DocumentOut,
    HealthOut,
    ParagraphContextOut,
)
from qabot.messages import NO_INDEX
from qabot.service import (
    MAX_DOCUMENTS_PAGE,
    MAX_FILTER_CHARS,
    MAX_QUESTION_CHARS,
    MAX_TOP_K,
    QAService,
    clean_question,
)

# The chat page (qabot.web) says it is the one asking with this header, so its questions are
# logged under the channel "web"; a header keeps the web package from importing this one.
CLIENT_HEADER = "X-Qabot-Client"
WEB_CLIENT = "web"
CLIENT_DESCRIPTION = (
    f"Kênh ghi vào nhật ký câu hỏi: «{WEB_CLIENT}» cho trang hỏi đáp của qabot; "
    "thiếu hoặc giá trị khác thì là «api»."
)
CLIENT_NOTE = (
    f" Header `{CLIENT_HEADER}: {WEB_CLIENT}` (trang hỏi đáp gửi) ghi câu hỏi vào nhật ký "
    "với kênh «web»; không có header này thì kênh là «api»."
)
TOTAL_HEADER = "X-Total-Count"  # GET /documents: the reports matching, on every page
ClientHeader = Annotated[
    str | None, Header(alias=CLIENT_HEADER, description=CLIENT_DESCRIPTION, examples=[WEB_CLIENT])
]


def channel_of(client: str | None) -> str:
    """The question log's channel for a request's X-Qabot-Client header."""
    return WEB_CLIENT if (client or "").strip().lower() == WEB_CLIENT else "api"


class _Answering:
    """Questions being answered, counted on the event loop's thread (no lock needed).

    A question is answered on the event loop itself when no other is being answered: the
    threadpool's two thread hand-offs (there and back) cost about half a millisecond a
    question on a two-core virtual machine, whose idle cores wake slowly, and a question's
    Python work holds the GIL either way, so a second question could not run beside it
    (with four clients asking at once, 56-66 questions a second both ways). Questions
    asked while one is answered go to the threadpool, and so does a long one, which may
    wait for its turn (QAService.waits_its_turn): the loop never waits for anything but one
    question's own work, about 10 ms at a million passages."""

    def __init__(self) -> None:
        self.count = 0

    async def answer(
        self,
        service: QAService,
        compute: Callable[[], AnswerOut],
        question: str,
        history: list[str] | None,
    ) -> AnswerOut:
        inline = self.count == 0 and not service.waits_its_turn(question, history)
        self.count += 1
        try:
            return compute() if inline else await run_in_threadpool(compute)
        finally:
            self.count -= 1


def add_question_routes(app: FastAPI, service: QAService) -> None:
    answering = _Answering()

    async def answer(
        question: str, top_k: int, client: str | None, history: list[str] | None = None
    ) -> AnswerOut:
        def compute() -> AnswerOut:
            text = clean_question(question)  # cheap checks first; QuestionError -> 422
            return AnswerOut.of(service.ask(text, top_k, history, channel=channel_of(client)))

        return await answering.answer(service, compute, question, history)

    # The endpoints are async: FastAPI would validate a sync endpoint's return value in a
    # second trip to the threadpool, two more thread wake-ups per question (0.3-0.6 ms on a
    # busy machine) for a few microseconds of work.
    @app.post(
        "/ask",
        tags=["Hỏi đáp"],
        summary="Đặt câu hỏi",
        description="Tìm câu trả lời trong các báo cáo và trả về các đoạn trích dẫn." + CLIENT_NOTE,
        response_model=AnswerOut,
        responses=error_responses(413, 422, 429, 503),
    )
    async def ask_post(body: AskRequest, x_qabot_client: ClientHeader = None) -> AnswerOut:
        return await answer(body.question, body.top_k, x_qabot_client, body.history)

    @app.get(
        "/ask",
        tags=["Hỏi đáp"],
        summary="Đặt câu hỏi (GET)",
        description="Như `POST /ask`, với câu hỏi trong tham số «q»." + CLIENT_NOTE,
        response_model=AnswerOut,
        responses=error_responses(422, 429, 503),
    )
    async def ask_get(
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
        x_qabot_client: ClientHeader = None,
    ) -> AnswerOut:
        return await answer(q, top_k, x_qabot_client)

    @app.get(
        "/health",
        tags=["Hệ thống"],
        summary="Tình trạng dịch vụ",
        description="Trả về 503 khi chưa có chỉ mục nào được nạp.",
        response_model=HealthOut,
        responses=error_responses(429, 503),
    )
    async def health() -> HealthOut:
        status = service.status()
        if status.get("version") is None:
            raise ApiError(503, "no_index", NO_INDEX)
        fields = (
            "status", "version", "documents", "passages", "embedder", "uptime_seconds",
            "calibration",
        )  # fmt: skip
        return HealthOut(**{key: status[key] for key in fields})


def add_document_routes(app: FastAPI, service: QAService) -> None:
    @app.get(
        "/documents",
        tags=["Tài liệu"],
        summary="Danh sách tài liệu",
        description=(
            "Các tài liệu đang có trong chỉ mục, mới nhất trước. «q» lọc theo từ trong tiêu "
            "đề, tên tệp hoặc ngày (gõ có dấu hay không dấu đều được); «offset» và «limit» "
            f"chia trang (tối đa {MAX_DOCUMENTS_PAGE} tài liệu một trang; không có «limit» "
            f"thì trả tất cả). Header `{TOTAL_HEADER}` cho biết tổng số tài liệu khớp."
        ),
        response_model=list[DocumentOut],
        responses=error_responses(422, 429, 503),
    )
    def list_documents(
        response: Response,
        q: Annotated[
            str,
            Query(
                max_length=MAX_FILTER_CHARS,
                description="Từ cần có trong tiêu đề, tên tệp hoặc ngày.",
                examples=["hai phong 2024"],
            ),
        ] = "",
        offset: Annotated[int, Query(ge=0, description="Bỏ qua bấy nhiêu tài liệu đầu.")] = 0,
        limit: Annotated[
            int | None,
            Query(ge=1, le=MAX_DOCUMENTS_PAGE, description="Số tài liệu tối đa của trang."),
        ] = None,
    ) -> list[DocumentOut]:
        page = service.find_documents(q, offset, limit)
        response.headers[TOTAL_HEADER] = str(page.total)
        return [DocumentOut.of(d) for d in page.documents]

    @app.get(
        "/documents/{doc_id:path}/paragraphs/{n}",
        tags=["Tài liệu"],
        summary="Một đoạn văn và các đoạn lân cận",
        description=(
            "Đoạn văn số «n» của tài liệu (như trong trích dẫn của `/ask`) cùng «radius» đoạn "
            f"trước và sau. Ví dụ: `/documents/{EXAMPLE_DOC_ID}/paragraphs/2`."
        ),
        response_model=ParagraphContextOut,
        responses=error_responses(404, 422, 429, 503),
    )
    def paragraph(
        doc_id: DocIdParam,
        n: Annotated[int, Path(description="Số thứ tự đoạn văn, bắt đầu từ 1.", examples=[2])],
        radius: Annotated[
            int,
            Query(ge=0, le=MAX_RADIUS, description="Số đoạn lân cận mỗi phía (0–5)."),
        ] = 1,
    ) -> ParagraphContextOut:
        return ParagraphContextOut.of(service.paragraph_context(doc_id, n, radius))
