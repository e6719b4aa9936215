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
    """Scrub these strings from all log records from now on; quiet httpx's request lines.
    Whatever is configured is scrubbed, however short: the settings checks refuse a weak
    webhook secret, so no secret that would be scrubbed out of ordinary words reaches here."""
    global _installed
    _secrets.update(s for s in secrets if s)
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


def _redacted_arg(value: object) -> object:
    """An argument with the secrets scrubbed, of a type its %-format still accepts: strings
    are redacted, and other values are left alone unless their text holds a secret."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (int, float)) or value is None:
        return value
    try:
        text = str(value)
    except Exception:
        return value
    return redact(text) if _contains_secret(text) else value


def _redact_message(record: logging.LogRecord, message: str) -> None:
    """Redact the record's message. Its arguments are redacted one by one and keep their
    shape: formatters such as uvicorn's access log unpack record.args themselves and fail
    on anything else (args=None made every webhook access line a logging error)."""
    args = record.args
    if isinstance(args, (tuple, dict)) and args:
        record.msg = redact(str(record.msg))
        if isinstance(args, tuple):
            record.args = tuple(_redacted_arg(a) for a in args)
        else:
            record.args = {k: _redacted_arg(v) for k, v in args.items()}
        try:
            if not _contains_secret(record.getMessage()):
                return
        except Exception:  # a redacted object no longer fits its %d
            pass
    # No arguments, or a secret split across them: the text alone, redacted.
    record.msg, record.args = redact(message), ()


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: leave it to logging's own error report
        return
    if _contains_secret(message):
        _redact_message(record, message)
    if record.exc_info and record.exc_info[1] is not None:
        text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if _contains_secret(text):
            record.exc_text = redact(text)
