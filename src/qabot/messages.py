"""The Vietnamese messages that more than one part of qabot shows, written once.

Interfaces (the HTTP API, the Telegram bot, the command line, the web page) and the service
take these from here, so the same situation reads the same everywhere. Messages that only
one interface shows stay with it. Two audiences: people asking questions get messages
without commands or server paths (NOT_READY, INTERNAL_ERROR); administrators get the
command that fixes the problem (``no_index_in``).

Pure text: this module imports nothing from qabot, so every layer may use it.
"""

from __future__ import annotations

from os import PathLike

# --- answers ---------------------------------------------------------------------------------

NOT_FOUND = "Không tìm thấy thông tin này trong các báo cáo hiện có."

# Retrieval is multilingual but the found / not-found judgement leans on Vietnamese words,
# so a question in another language is not found; people are asked to write in Vietnamese.
OTHER_LANGUAGE_HINT = (
    "Hiện tôi chỉ hiểu câu hỏi bằng tiếng Việt. Bạn vui lòng đặt lại câu hỏi bằng tiếng Việt "
    "(có dấu hoặc không dấu đều được)."
)

# --- the service is not ready or failed ------------------------------------------------------

NOT_READY = "Hệ thống chưa có dữ liệu báo cáo để tra cứu. Vui lòng quay lại sau."

NO_INDEX = (
    "Dịch vụ chưa sẵn sàng: chưa có chỉ mục tài liệu nào được nạp. "
    "Quản trị viên vui lòng tạo chỉ mục (lệnh: qabot index build) rồi thử lại."
)

INTERNAL_ERROR = (
    "Xin lỗi, đã có lỗi xảy ra khi xử lý yêu cầu của bạn. Vui lòng thử lại sau ít phút."
)

INDEX_BUSY = "Chỉ mục đang được một tiến trình khác cập nhật. Vui lòng thử lại sau ít phút."
LONG_QUESTIONS_BUSY = (
    "Hệ thống đang xử lý nhiều câu hỏi rất dài. Xin vui lòng hỏi ngắn gọn hơn, hoặc thử lại "
    "sau giây lát."
)


def no_index_in(index_dir: str | PathLike[str]) -> str:
    """For administrators: which folder has no index and the command that builds it. Starts
    in lower case, as it follows "Lỗi: " on the command line."""
    return (
        f"chưa có chỉ mục trong {index_dir}; hãy tạo bằng lệnh: "
        f"qabot index build --index {index_dir}"
    )


# --- sizes -----------------------------------------------------------------------------------


def human_size(size: int) -> str:
    """2048 -> "2 KB", 1572864 -> "1.5 MB"."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.1f}".removesuffix(".0") + " KB"
    return f"{size} byte"
