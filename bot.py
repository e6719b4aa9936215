"""Run the Telegram bot: `python bot.py` does what `qabot bot` does.

Settings come from QABOT_* environment variables and .env. Without QABOT_TELEGRAM_TOKEN or
without an index the bot stops at once with a one-line message and exit status 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

try:
    import qabot  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))


def _fail(message: str) -> int:
    print(f"Lỗi: {message}", file=sys.stderr)
    return 1


def main() -> int:
    from pydantic import ValidationError

    from qabot.config import Settings

    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        field = "_".join(str(part) for part in first["loc"]).upper()
        return _fail(f"cấu hình không hợp lệ: QABOT_{field} ({first['msg']})")
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)

    from qabot.cli import service_from_settings
    from qabot.embedding import EmbedderError
    from qabot.index import IndexStoreError
    from qabot.telegram import BotConfigError, run_bot
    from qabot.telegram.app import token_of

    try:
        token_of(settings)  # before loading any model
        service = service_from_settings(settings)
    except (BotConfigError, IndexStoreError, EmbedderError) as error:
        return _fail(str(error))
    try:
        return run_bot(service, settings)
    except KeyboardInterrupt:
        print("Đã dừng.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
