"""Run the Telegram bot: `python bot.py` does what `qabot bot` does.

Settings come from QABOT_* environment variables and .env. Without QABOT_TELEGRAM_TOKEN or
without an index the bot stops at once with a one-line message and exit status 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import qabot  # noqa: F401
except ImportError:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from qabot.cli import main

if __name__ == "__main__":
    sys.exit(main(["bot", *sys.argv[1:]]))
