"""Webhook mode through a real uvicorn server: its access lines log without logging errors
and without the secret; a weak secret is refused at start-up with one clear line."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from qabot.http import create_app
from qabot.service import BotConfigError, QAService
from qabot.telegram import attach_webhook, run_bot
from qabot.telegram.logs import REDACTED, protect_secrets
from qabot.telegram.webhook import SECRET_HEADER

from .servers import uvicorn_server
from .test_telegram import USER_ID, FakeBotAPI, api, make_settings, message_update  # noqa: F401

# Unique to this module: secrets stay scrubbed from every later log record of the session.
STRONG_SECRET = "wh00k-Secret_for-Tests-7f3a9c"


@contextmanager
def captured(logger_name: str, formatter: logging.Formatter) -> Iterator[io.StringIO]:
    """Lines of one logger through a real StreamHandler and ``formatter``, at INFO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_webhook_access_lines_log_cleanly_and_without_the_secret(
    api: FakeBotAPI,  # noqa: F811
    service: QAService,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", True)  # a handler error is reported
    settings = make_settings(
        api, telegram_webhook_url="https://bot.example.vn", telegram_webhook_secret=STRONG_SECRET
    )
    app = create_app(service, settings)
    assert attach_webhook(app, service, settings)
    # uvicorn's own access formatter unpacks record.args: the scrubber must keep their shape.
    access_format = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s')
    plain = logging.Formatter("%(name)s %(message)s")
    with (
        captured("uvicorn.access", access_format) as uvicorn_lines,
        captured("qabot.api", plain) as qabot_lines,
        uvicorn_server(app, lifespan="on", access_log=True) as (url, _),
    ):
        hook = f"{url}/telegram/{STRONG_SECRET}"
        good = {SECRET_HEADER: STRONG_SECRET}
        assert httpx.post(hook, json=message_update(78), headers=good).status_code == 200
        assert httpx.post(hook, json=message_update(78)).status_code == 403
        assert httpx.get(f"{url}/health").status_code == 200
        api.wait_for("sendMessage", chat_id=USER_ID)
    err = capsys.readouterr().err
    assert "Logging error" not in err and "Traceback" not in err, err
    access = uvicorn_lines.getvalue()
    assert f'"POST /telegram/{REDACTED} HTTP/1.1" 200' in access
    assert f'"POST /telegram/{REDACTED} HTTP/1.1" 403' in access
    assert '"GET /health HTTP/1.1" 200' in access  # lines without a secret are untouched
    ours = qabot_lines.getvalue()
    assert f"path=/telegram/{REDACTED} status=200" in ours
    assert STRONG_SECRET not in access + ours + err


def test_scrubbed_records_keep_their_arguments_usable(capsys: pytest.CaptureFixture) -> None:
    protect_secrets(STRONG_SECRET)
    logger = logging.getLogger("qabot.test.scrub")
    with captured("qabot.test.scrub", logging.Formatter("%(message)s")) as lines:
        logger.info("n=%d path=%s", 3, f"/telegram/{STRONG_SECRET}")
        logger.info("mapping %(path)s", {"path": STRONG_SECRET})
        logger.info("split %s%s", STRONG_SECRET[:8], STRONG_SECRET[8:])
        logger.info(f"inline {STRONG_SECRET} 100%")
    assert lines.getvalue().splitlines() == [
        f"n=3 path=/telegram/{REDACTED}",
        f"mapping {REDACTED}",
        f"split {REDACTED}",
        f"inline {REDACTED} 100%",
    ]
    assert "Logging error" not in capsys.readouterr().err


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("abc", "quá ngắn (3 ký tự)"),
        ("short-secret-15", "quá ngắn (15 ký tự)"),
        ("có dấu và khoảng trắng dài", "ký tự không được phép"),
        ("", "chưa được đặt"),
    ],
)
def test_a_weak_webhook_secret_is_refused_at_start(
    api: FakeBotAPI,  # noqa: F811
    service: QAService,
    capsys: pytest.CaptureFixture[str],
    secret: str,
    problem: str,
) -> None:
    settings = make_settings(
        api, telegram_webhook_url="https://bot.example.vn", telegram_webhook_secret=secret
    )
    # qabot serve: the webhook is not attached and the error says why.
    app = create_app(service, settings)
    with pytest.raises(BotConfigError, match="QABOT_TELEGRAM_WEBHOOK_SECRET") as refused:
        attach_webhook(app, service, settings)
    assert problem in str(refused.value)
    assert not any("/telegram" in getattr(r, "path", "") for r in app.routes)
    # qabot bot: one line on stderr, exit status 1, nothing sent to Telegram.
    assert run_bot(service, settings) == 1
    err = capsys.readouterr().err
    assert err.startswith("Lỗi: chế độ webhook cần QABOT_TELEGRAM_WEBHOOK_SECRET")
    assert problem in err and "16–256 ký tự" in err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not api.calls


def test_a_strong_secret_of_sixteen_characters_is_accepted(
    api: FakeBotAPI,  # noqa: F811
    service: QAService,
) -> None:
    settings = make_settings(
        api,
        telegram_webhook_url="https://bot.example.vn",
        telegram_webhook_secret="A-z_09" + "x" * 10,
    )
    app = create_app(service, settings)
    assert attach_webhook(app, service, settings)
