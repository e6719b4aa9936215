"""Keep the bot token (and the webhook secret) out of every log record.

The Bot API puts the token in each request URL, and httpx logs request URLs at INFO; the
python-telegram-bot Bot logs its API URL at DEBUG. Quieting httpx is not enough on its own,
so every record is also scrubbed when it is created, whatever logger or handler it goes to.
"""

from __future__ import annotations

import logging
import traceback

REDACTED = "[REDACTED]"
_secrets: set[str] = set()
_installed = False


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def _contains_secret(text: str) -> bool:
    return any(secret in text for secret in _secrets)


def protect_secrets(*secrets: str | None) -> None:
    """Scrub these strings from all log records from now on; quiet httpx's request lines."""
    global _installed
    _secrets.update(s for s in secrets if s and len(s) >= 4)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if _secrets:
            _scrub(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to logging's own error report
        return
    if _contains_secret(message):
        record.msg, record.args = redact(message), None
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if _contains_secret(text):
            record.exc_text = redact(text)
