"""The web pages (chat at /, admin at /admin) in a real headless Chromium against a real
uvicorn server and the real QAService.

The browser is Debian's chromium with its chromedriver (never a downloaded one). Without
them the browser tests are skipped with a reason that says so, except in CI (CI set), where
they fail: `.ci/run` installs the browser, so there they always run. Screenshots go to
tests/screenshots/ (git-ignored).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from qabot.config import Settings
from qabot.http import create_app
from qabot.service import QAService, QuestionLog
from qabot.web import mount_web

from .servers import uvicorn_server

ROOT = Path(__file__).resolve().parents[1]
REPORTS = ROOT / "data" / "reports"
SCREENSHOTS = ROOT / "tests" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_SECONDS = 90  # an upload re-embeds on 2 shared cores

TOKEN = "web-s3cret"
ON_TOPIC = "Đảng ủy Khu kinh tế Hải Phòng có những cơ quan tham mưu giúp việc nào?"
OFF_TOPIC = "Thời tiết Hà Nội ngày mai thế nào?"
FOLLOW_UP = "Còn Cần Thơ thì sao?"
COMMENT = "Thiếu Ban Dân vận trong danh sách"
THANKS = "Cảm ơn bạn đã phản hồi."

NEW_REPORT_NAME = "2025-05-20-trang-due-tap-huan-an-toan.txt"
NEW_REPORT_TITLE = "Khu công nghiệp Tràng Duệ tổ chức lớp tập huấn an toàn lao động cho công nhân"
NEW_REPORT = f"""{NEW_REPORT_TITLE}
08:30 - 20/05/2025

Ngày 20/5/2025, Ban Quản lý Khu công nghiệp Tràng Duệ phối hợp với Công đoàn Khu kinh tế \
tổ chức lớp tập huấn an toàn lao động cho 320 công nhân của 12 doanh nghiệp.

Trong hai ngày, các học viên được hướng dẫn kỹ năng phòng cháy, chữa cháy và sơ cứu người bị \
nạn tại nhà xưởng.
"""
NEW_REPORT_QUESTION = (
    "Lớp tập huấn an toàn lao động ở Khu công nghiệp Tràng Duệ có bao nhiêu công nhân tham gia?"
)

HTML_REPORT_NAME = "2025-06-02-bao-cao-co-the-html.txt"
HTML_TITLE = "Báo cáo <b>thử</b> về <script>window.pwned = 1</script> an toàn kho hàng"
HTML_REPORT = f"""{HTML_TITLE}

Ngày 2/6/2025, Ban Quản lý Khu công nghiệp Đình Vũ kiểm tra an toàn kho hàng \
<img src=x onerror="window.pwned = 2"> của 45 doanh nghiệp và nhắc nhở 7 doanh nghiệp.
"""
HTML_QUESTION = (
    "Ban Quản lý Khu công nghiệp Đình Vũ kiểm tra an toàn kho hàng của bao nhiêu doanh nghiệp?"
)


# --- server --------------------------------------------------------------------------------


def make_settings(**overrides: Any) -> Settings:
    """Explicit Settings: neither a developer's .env nor QABOT_* variables leak in."""
    values: dict[str, Any] = {
        "admin_token": None,
        "cors_origins": [],
        "log_level": "INFO",
        "rate_limit": 0,  # a page and its scripts share one address; the limit is tested apart
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Site:
    url: str
    api: httpx.Client
    stop: Callable[[], None]


@contextmanager
def serving(service: QAService, settings: Settings) -> Iterator[Site]:
    """The app on a real uvicorn server on an ephemeral 127.0.0.1 port; always stopped."""
    app = create_app(service, settings)
    mount_web(app, service, settings)  # as `qabot serve` composes them
    with (
        uvicorn_server(app) as (url, stop),
        httpx.Client(base_url=url, timeout=WAIT_SECONDS) as api,
    ):
        yield Site(url, api, stop)


@pytest.fixture(scope="module")
def question_log(tmp_path_factory) -> QuestionLog:
    """The question log of `site` (a real SQLite file); `site` closes it."""
    return QuestionLog(tmp_path_factory.mktemp("web-log") / "questions.sqlite")


@pytest.fixture(scope="module")
def site(tmp_path_factory, reports_index, embedder, question_log) -> Iterator[Site]:
    """A server with admin functions and a question log on its own copy of the reports and
    index. Tests that add a report remove it again, so every test starts from the five
    sample reports."""
    root = tmp_path_factory.mktemp("web-site")
    shutil.copytree(REPORTS, root / "docs")
    shutil.copytree(reports_index, root / "index", ignore=shutil.ignore_patterns("build.lock"))
    service = QAService(root / "index", embedder, docs_dir=root / "docs", question_log=question_log)
    try:
        with serving(service, make_settings(admin_token=TOKEN)) as running:
            yield running
    finally:
        service.close()


# --- browser -------------------------------------------------------------------------------


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return (
            "browser tests skipped: Debian's chromium and chromium-driver are not installed "
            "(apt-get install -y chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "browser tests skipped: selenium is not installed (pip install -e '.[dev]')"
    return None


@pytest.fixture(scope="module")
def chrome() -> Iterator[Any]:
    reason = browser_missing()
    if reason and os.environ.get("CI"):
        pytest.fail(f"{reason}; in CI they must run (.ci/run installs the browser)")
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="qabot-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        "--lang=vi",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(argument)
    # The performance log holds the requests the page sends (bodies and headers).
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def browser(chrome: Any) -> Iterator[Any]:
    """The shared browser at desktop size, with its logs emptied; the page's JavaScript
    errors fail the test."""
    chrome.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    chrome.get_log("performance")
    chrome.get_log("browser")
    yield chrome
    errors = [
        entry["message"]
        for entry in chrome.get_log("browser")
        if entry["level"] == "SEVERE"
        and "favicon" not in entry["message"]
        # a failed request the test meant (422, 503, a stopped server) is logged too
        and "Failed to load resource" not in entry["message"]
        and "ERR_CONNECTION_REFUSED" not in entry["message"]
    ]
    assert errors == [], errors


def wait_for(driver: Any, condition: Callable[[Any], Any], timeout: float = WAIT_SECONDS) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The pages redraw lists as answers arrive; an element caught mid-redraw is looked up again.
    wait = WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(condition)


def css(root: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return root.find_elements(By.CSS_SELECTOR, selector)


def one(root: Any, selector: str) -> Any:
    found = css(root, selector)
    assert len(found) == 1, f"{len(found)} elements match {selector!r}"
    return found[0]


def open_chat(driver: Any, site: Site) -> None:
    driver.get(site.url + "/")
    wait_for(driver, lambda d: d.execute_script("return document.readyState") == "complete")


def ask(driver: Any, question: str) -> Any:
    """Type a question, send it, and return its answered bubble."""
    before = len(css(driver, "#log .turn"))
    box = one(driver, "#question")
    if len(question) > 200:  # typing a thousand keys is slow; the value is what counts
        driver.execute_script("arguments[0].value = arguments[1];", box, question)
    else:
        box.send_keys(question)
    one(driver, "#send").click()
    wait_for(driver, lambda d: len(css(d, "#log .turn")) == before + 1)
    turn = css(driver, "#log .turn")[-1]
    wait_for(driver, lambda d: not css(turn, ".bubble.bot.pending"))
    return one(turn, ".bubble.bot")


def ask_requests(driver: Any) -> list[dict]:
    """The JSON bodies of the POST /ask requests the page sent since the log was last read."""
    bodies = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] != "Network.requestWillBeSent":
            continue
        request = message["params"]["request"]
        if request["method"] == "POST" and request["url"].endswith("/ask"):
            bodies.append(json.loads(request["postData"]))
    return bodies


def feedback_requests(driver: Any) -> list[dict]:
    """The JSON bodies of the POST /feedback requests the page sent since the log was read."""
    return [
        json.loads(r["postData"])
        for r in request_log(driver)
        if r["method"] == "POST" and r["url"].endswith("/feedback")
    ]


def logged(question_log: QuestionLog, answer_id: str) -> dict:
    """The question log's row of one answer (what was written before this call)."""
    found = [dict(r) for r in question_log.rows() if r["answer_id"] == answer_id]
    assert len(found) == 1, f"{len(found)} rows for answer {answer_id}"
    return found[0]


def request_log(driver: Any) -> list[dict]:
    return [
        json.loads(entry["message"])["message"]["params"]["request"]
        for entry in driver.get_log("performance")
        if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
    ]


def phone_width(driver: Any) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True},
    )


def horizontal_overflow(driver: Any) -> int:
    """How many CSS pixels the page is wider than the window (0 when it fits)."""
    return driver.execute_script(
        "return Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


def screenshot(driver: Any, name: str) -> Path:
    """The whole page (up to 3,000 pixels tall) at the window's width, as one picture."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.execute_script("return window.innerWidth")
    metrics = {"width": width, "height": min(height, 3000), "deviceScaleFactor": 1}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "mobile": width < 500})
    assert driver.save_screenshot(str(path))
    return path


def click(driver: Any, element: Any) -> None:
    """Click like a person: the element scrolled to the middle of the window first, clear of
    the page's sticky bars."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()


def open_admin_signed_out(driver: Any, site: Site) -> Any:
    """The admin page with no token remembered (an earlier test may have signed in); the
    token box."""
    driver.get(site.url + "/admin")
    driver.execute_script("sessionStorage.clear();")
    driver.refresh()
    return wait_for(driver, lambda d: [e for e in css(d, "#token") if e.is_displayed()])[0]


def sign_in(driver: Any, site: Site) -> None:
    box = open_admin_signed_out(driver, site)
    box.send_keys(TOKEN)
    one(driver, "#login-form button[type=submit]").click()
    wait_for(driver, lambda d: one(d, "#upload").is_displayed())


def upload(driver: Any, tmp_path: Path, name: str, text: str) -> str:
    """Upload one report through the admin page; the page's result message."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    one(driver, "#files").send_keys(str(path))
    one(driver, "#upload-button").click()
    result = one(driver, "#upload-result")
    wait_for(driver, lambda d: result.is_displayed())
    return result.text


def document_row(driver: Any, doc_id: str) -> Any | None:
    # One script, so a table the page is redrawing cannot go stale halfway through the search.
    return driver.execute_script(
        "return [...document.querySelectorAll('#documents tbody tr')]"
        ".find((row) => row.dataset.docId === arguments[0]) || null;",
        doc_id,
    )


def remove_quietly(site: Site, doc_id: str) -> None:
    """Cleanup after a test that uploaded, whatever happened in it."""
    if any(d["doc_id"] == doc_id for d in site.api.get("/documents").json()):
        site.api.delete(f"/documents/{doc_id}", headers={"Authorization": f"Bearer {TOKEN}"})


# --- the pages without a browser -----------------------------------------------------------


def test_pages_forbid_inline_code(site: Site) -> None:
    for path in ("/", "/admin"):
        response = site.api.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "default-src 'none'" in policy
        html = response.text
        assert 'lang="vi"' in html
        assert "style=" not in html  # no inline styles the policy would block
        assert "<script>" not in html and "http" not in html.replace("http-equiv", "")
    script = site.api.get("/static/chat.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert site.api.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_web_json_helpers(site: Site) -> None:
    examples = site.api.get("/examples", params={"n": 3}).json()["questions"]
    assert 1 <= len(examples) <= 3
    assert all(q.endswith("?") for q in examples)
    assert site.api.get("/examples", params={"n": 0}).status_code == 422
    assert site.api.get("/admin/config").json() == {"enabled": True, "authorized": False}
    wrong = site.api.get("/admin/config", headers={"Authorization": "Bearer nope"})
    assert wrong.json() == {"enabled": True, "authorized": False}
    right = site.api.get("/admin/config", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.json() == {"enabled": True, "authorized": True}
    documents = site.api.get("/admin/documents").json()["documents"]
    listed = {d["doc_id"]: d for d in site.api.get("/documents").json()}
    assert {d["doc_id"] for d in documents} == set(listed)
    for document in documents:
        assert document["size"] == (REPORTS / document["doc_id"]).stat().st_size
        assert {k: v for k, v in document.items() if k != "size"} == listed[document["doc_id"]]


def admin_documents(site: Site, **params: Any) -> dict:
    response = site.api.get("/admin/documents", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_admin_documents_come_a_page_at_a_time(site: Site) -> None:
    whole = admin_documents(site)
    assert set(whole) == {"total", "offset", "next_offset", "query", "documents"}
    assert (whole["total"], whole["offset"], whole["next_offset"], whole["query"]) == (
        5,
        0,
        None,
        "",
    )
    ids = [d["doc_id"] for d in whole["documents"]]
    assert sorted(ids) == sorted(p.name for p in REPORTS.iterdir())
    # Newest first, undated reports after the dated ones.
    dates = [d["date"] for d in whole["documents"]]
    dated = [d for d in dates if d]
    assert dates[: len(dated)] == sorted(dated, reverse=True)
    assert not any(dates[len(dated) :])

    first = admin_documents(site, limit=2)
    assert [d["doc_id"] for d in first["documents"]] == ids[:2]
    assert (first["total"], first["offset"], first["next_offset"]) == (5, 0, 2)
    assert first["documents"] == whole["documents"][:2]  # sizes included
    middle = admin_documents(site, offset=2, limit=2)
    assert [d["doc_id"] for d in middle["documents"]] == ids[2:4]
    assert middle["next_offset"] == 4
    last = admin_documents(site, offset=4, limit=2)
    assert [d["doc_id"] for d in last["documents"]] == ids[4:]
    assert (last["total"], last["offset"], last["next_offset"]) == (5, 4, None)
    beyond = admin_documents(site, offset=9)
    assert (beyond["documents"], beyond["total"], beyond["next_offset"]) == ([], 5, None)


def test_admin_documents_filter_ignores_diacritics(site: Site) -> None:
    listed = site.api.get("/documents").json()
    expected = [d["doc_id"] for d in listed if "Hải Phòng" in d["title"]]
    assert 0 < len(expected) < len(listed)
    found = admin_documents(site, q="  hai   phong ")
    assert [d["doc_id"] for d in found["documents"]] == expected
    assert (found["total"], found["next_offset"], found["query"]) == (
        len(expected),
        None,
        "hai phong",
    )
    accented = admin_documents(site, q="Hải Phòng")
    assert [d["doc_id"] for d in accented["documents"]] == expected
    paged = admin_documents(site, q="hai phong", limit=1)
    assert [d["doc_id"] for d in paged["documents"]] == expected[:1]
    assert paged["total"] == len(expected)
    assert paged["next_offset"] == (1 if len(expected) > 1 else None)
    year = listed[0]["date"][:4]  # a word of the date narrows too
    in_year = [d["doc_id"] for d in listed if (d["date"] or "").startswith(year)]
    assert [d["doc_id"] for d in admin_documents(site, q=year)["documents"]] == in_year
    nothing = admin_documents(site, q="hai phong zzzz")
    assert (nothing["documents"], nothing["total"], nothing["next_offset"]) == ([], 0, None)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"limit": 0}, "out_of_range"),
        ({"limit": 501}, "out_of_range"),
        ({"offset": -1}, "out_of_range"),
        ({"offset": "two"}, "invalid_type"),
        ({"q": "x" * 201}, None),  # the code of a too long text is qabot.http's to name
    ],
    ids=["limit=0", "limit=501", "offset=-1", "offset=two", "q-too-long"],
)
def test_admin_documents_refuses_bad_parameters(site: Site, params: dict, code: str | None) -> None:
    response = site.api.get("/admin/documents", params=params)
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"detail", "code"}  # qabot's error JSON, not FastAPI's
    assert isinstance(body["detail"], str) and body["detail"].strip()
    assert body["code"] == code if code else body["code"]
    field = next(iter(params))
    assert f"«{field}»" in body["detail"]


def test_ask_header_sets_the_logged_channel(site: Site, question_log: QuestionLog) -> None:
    web = site.api.post("/ask", json={"question": ON_TOPIC}, headers={"X-Qabot-Client": "web"})
    plain = site.api.post("/ask", json={"question": ON_TOPIC})
    other = site.api.get("/ask", params={"q": ON_TOPIC}, headers={"X-Qabot-Client": "curl"})
    web_get = site.api.get("/ask", params={"q": ON_TOPIC}, headers={"x-qabot-client": "Web"})
    assert logged(question_log, web.json()["answer_id"])["channel"] == "web"
    assert logged(question_log, web_get.json()["answer_id"])["channel"] == "web"
    assert logged(question_log, plain.json()["answer_id"])["channel"] == "api"
    assert logged(question_log, other.json()["answer_id"])["channel"] == "api"


# --- the chat page -------------------------------------------------------------------------


def test_answer_shows_highlighted_span_and_source(browser: Any, site: Site) -> None:
    expected = site.api.post("/ask", json={"question": ON_TOPIC, "top_k": 3}).json()
    assert expected["found"]
    open_chat(browser, site)
    examples = wait_for(browser, lambda d: css(d, "#example-list .example"))
    assert examples and all(e.text.strip() for e in examples)

    bubble = ask(browser, ON_TOPIC)
    assert one(bubble, ".answer-text").text == expected["answer"]
    # The best passage and the one holding the answer are shown, the rest behind one click.
    main = [p for i, p in enumerate(expected["passages"]) if i == 0 or p["highlight"]]
    more = [p for i, p in enumerate(expected["passages"]) if not (i == 0 or p["highlight"])]
    assert len(css(bubble, ".passages")[0].find_elements("css selector", ".passage")) == len(main)
    if more:
        summary = one(bubble, ".more-passages summary")
        assert summary.text == f"Xem thêm {len(more)} đoạn liên quan"
        assert not css(bubble, ".more-passages .passage")[0].is_displayed()
        click(browser, summary)
    passages = css(bubble, ".passage")
    for shown, cited in zip(passages, main + more, strict=True):
        assert one(shown, ".source-title").text == cited["title"]
        meta = one(shown, ".source-meta").text
        assert cited["source"] in meta and f"đoạn {cited['paragraph']}" in meta
        year, month, day = cited["date"].split("-")
        assert f"{day}/{month}/{year}" in meta
        marks = css(shown, "mark")
        if cited["highlight"]:
            start, end = cited["highlight"]
            assert [m.text for m in marks] == [cited["text"][start:end].strip()]
        else:
            assert marks == []
    assert css(bubble, "mark"), "the answer span is highlighted in at least one passage"
    assert not css(bubble, ".interpreted")  # nothing was reinterpreted
    assert not one(browser, "#welcome").is_displayed()
    screenshot(browser, "chat-desktop.png")


def test_source_paragraph_opens_in_place(browser: Any, site: Site) -> None:
    open_chat(browser, site)
    bubble = ask(browser, ON_TOPIC)
    passage = css(bubble, ".passage")[0]
    cited = site.api.post("/ask", json={"question": ON_TOPIC, "top_k": 3}).json()["passages"][0]
    context = site.api.get(
        f"/documents/{cited['doc_id']}/paragraphs/{cited['paragraph']}", params={"radius": 1}
    ).json()
    toggle = one(passage, "button.link")
    assert toggle.text == "Xem đoạn gốc"
    click(browser, toggle)
    box = one(passage, ".context")
    wait_for(browser, lambda d: css(box, ".context-paragraph"))
    shown = [one(p, "p").text for p in css(box, ".context-paragraph")]
    assert shown == [p["text"].strip() for p in context["paragraphs"]]
    cited_paragraph = one(box, ".context-paragraph.cited")
    assert one(cited_paragraph, ".paragraph-number").text == f"Đoạn {cited['paragraph']}"
    assert toggle.text == "Ẩn đoạn gốc"
    click(browser, toggle)
    assert not box.is_displayed()
    assert toggle.text == "Xem đoạn gốc"


def test_not_found_shows_no_passages(browser: Any, site: Site) -> None:
    open_chat(browser, site)
    bubble = ask(browser, OFF_TOPIC)
    assert "Không tìm thấy" in one(bubble, ".not-found").text
    assert "diễn đạt lại" in one(bubble, ".hint").text
    assert css(bubble, ".passage") == [] and css(bubble, ".answer-text") == []


def test_server_errors_are_readable_and_the_page_goes_on(browser: Any, site: Site) -> None:
    open_chat(browser, site)
    bubble = ask(browser, "Đảng " * 250 + "a")  # 1001 characters: the API answers 422
    assert "error" in bubble.get_attribute("class")
    assert one(bubble, ".error-text").text == "Câu hỏi dài quá 1000 ký tự, vui lòng rút gọn."
    # The page still works, and the failed question is not part of the conversation.
    browser.get_log("performance")
    assert one(ask(browser, ON_TOPIC), ".answer-text").text
    assert ask_requests(browser)[-1]["history"] == []


def test_conversation_history_and_new_chat(browser: Any, site: Site) -> None:
    open_chat(browser, site)
    ask(browser, ON_TOPIC)
    ask(browser, FOLLOW_UP)
    sent = ask_requests(browser)
    assert [b["question"] for b in sent] == [ON_TOPIC, FOLLOW_UP]
    assert [b["history"] for b in sent] == [[], [ON_TOPIC]]
    one(browser, "#new-chat").click()
    assert css(browser, "#log .turn") == []
    assert one(browser, "#welcome").is_displayed()
    ask(browser, FOLLOW_UP)
    assert ask_requests(browser)[-1]["history"] == []


def test_thumbs_down_with_a_comment_is_logged(
    browser: Any, site: Site, question_log: QuestionLog
) -> None:
    open_chat(browser, site)
    bubble = ask(browser, ON_TOPIC)
    sent = [r for r in request_log(browser) if r["url"].endswith("/ask")]
    headers = {k.lower(): v for k, v in sent[-1]["headers"].items()}
    assert headers.get("x-qabot-client") == "web"
    bar = one(bubble, ".feedback")
    up, down = css(bar, "button.vote")
    assert (up.text, down.text) == ("👍", "👎")
    assert css(bar, ".feedback-comment") == []  # offered only after a 👎
    click(browser, down)
    status = one(bar, ".feedback-status")
    wait_for(browser, lambda d: status.text == THANKS)
    assert not up.is_enabled() and not down.is_enabled()
    assert down.get_attribute("aria-pressed") == "true"
    box = one(bar, ".feedback-comment .comment-input")
    assert box.get_attribute("placeholder") == "Câu trả lời sai ở đâu? (không bắt buộc)"
    box.send_keys(COMMENT)
    click(browser, one(bar, ".feedback-comment button[type=submit]"))
    wait_for(browser, lambda d: css(bar, ".comment-sent"))
    assert css(bar, ".feedback-comment") == []  # asked once
    assert len(css(bar, "button.vote")) == 2 and not any(
        b.is_enabled() for b in css(bar, "button.vote")
    )

    vote, comment = feedback_requests(browser)
    answer_id = vote["answer_id"]
    assert vote == {"answer_id": answer_id, "helpful": False}
    assert comment == {"answer_id": answer_id, "helpful": False, "comment": COMMENT}
    row = logged(question_log, answer_id)
    assert row["channel"] == "web"
    assert row["question"] == ON_TOPIC
    assert row["helpful"] == 0 and row["comment"] == COMMENT


def test_no_feedback_buttons_when_the_log_is_off(browser: Any, service: QAService) -> None:
    assert service.question_log is None
    with serving(service, make_settings()) as plain:
        assert plain.api.post("/ask", json={"question": ON_TOPIC}).json()["answer_id"] is None
        open_chat(browser, plain)
        bubble = ask(browser, ON_TOPIC)
        assert one(bubble, ".answer-text").text
        assert css(bubble, ".feedback, button.vote") == []


def test_feedback_errors_show_inline(
    browser: Any, tmp_path: Path, reports_index: Path, embedder
) -> None:
    # A log whose file cannot be opened (its path is a folder): answers still go out with an
    # id, and feedback is refused with 503 log_unavailable.
    broken = QAService(reports_index, embedder, question_log=QuestionLog(tmp_path))
    try:
        with serving(broken, make_settings()) as running:
            open_chat(browser, running)
            bubble = ask(browser, ON_TOPIC)
            bar = one(bubble, ".feedback")
            up, down = css(bar, "button.vote")
            click(browser, up)
            status = one(bar, ".feedback-status")
            wait_for(browser, lambda d: "error-text" in status.get_attribute("class"))
            assert status.text.startswith("Chức năng ghi nhận câu hỏi và phản hồi đang tắt")
            assert up.is_enabled() and down.is_enabled()  # nothing stored: press again
            assert css(bar, ".feedback-comment") == []
            running.stop()
            click(browser, down)
            wait_for(browser, lambda d: status.text.startswith("Không kết nối được"))
            assert css(bar, ".feedback-comment") == []
    finally:
        broken.close()


def test_no_index_and_network_failure(browser: Any, tmp_path: Path, embedder) -> None:
    service = QAService(tmp_path / "no-index", embedder)
    with serving(service, make_settings()) as empty:
        open_chat(browser, empty)
        bubble = ask(browser, ON_TOPIC)
        assert "chưa có chỉ mục" in one(bubble, ".error-text").text
        assert not one(browser, "#examples").is_displayed()
        empty.stop()
        bubble = ask(browser, ON_TOPIC)
        assert one(bubble, ".error-text").text.startswith("Không kết nối được tới máy chủ")


def test_phone_width_has_no_horizontal_scroll(browser: Any, site: Site) -> None:
    phone_width(browser)
    open_chat(browser, site)
    assert browser.execute_script("return window.innerWidth") == 390
    wait_for(browser, lambda d: css(d, "#example-list .example"))
    assert horizontal_overflow(browser) <= 0
    bubble = ask(browser, ON_TOPIC)
    click(browser, one(css(bubble, ".passage")[0], "button.link"))
    wait_for(browser, lambda d: css(bubble, ".context-paragraph"))
    assert horizontal_overflow(browser) <= 0
    click(browser, css(bubble, "button.vote")[1])  # 👎 opens the comment box
    wait_for(browser, lambda d: css(bubble, ".feedback-comment"))
    assert horizontal_overflow(browser) <= 0
    screenshot(browser, "chat-phone.png")
    phone_width(browser)
    browser.get(site.url + "/admin")
    wait_for(browser, lambda d: css(d, "#documents tbody tr[data-doc-id]"))
    assert horizontal_overflow(browser) <= 0
    screenshot(browser, "admin-phone.png")


# --- the admin page ------------------------------------------------------------------------


def test_upload_ask_and_delete_a_report(browser: Any, site: Site, tmp_path: Path) -> None:
    doc_id = NEW_REPORT_NAME
    try:
        sign_in(browser, site)
        assert not one(browser, "#login").is_displayed()
        wait_for(browser, lambda d: document_row(d, "2018-06-12-can-tho-so-ket-giua-nhiem-ky.txt"))
        status = one(browser, "#status").text
        assert "Sẵn sàng" in status and site.api.get("/health").json()["version"] in status
        screenshot(browser, "admin.png")
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

        result = upload(browser, tmp_path, NEW_REPORT_NAME, NEW_REPORT)
        assert result.startswith("Đã thêm 1 báo cáo"), result
        assert not one(browser, "#upload-progress").is_displayed()
        row = wait_for(browser, lambda d: document_row(d, doc_id))
        assert NEW_REPORT_TITLE in row.text and "20/05/2025" in row.text
        size = len(NEW_REPORT.encode("utf-8"))
        assert f"{size} byte" in row.text or "KB" in row.text

        open_chat(browser, site)
        bubble = ask(browser, NEW_REPORT_QUESTION)
        assert "320" in one(bubble, ".answer-text").text
        assert NEW_REPORT_NAME in one(css(bubble, ".passage")[0], ".source-meta").text

        browser.get(site.url + "/admin")  # the token is remembered for this tab
        row = wait_for(browser, lambda d: document_row(d, doc_id))
        assert not one(browser, "#login").is_displayed()
        click(browser, one(row, "button.danger"))
        dialog = one(browser, "#confirm")
        wait_for(browser, lambda d: dialog.is_displayed())
        assert NEW_REPORT_TITLE in one(dialog, "#confirm-text").text
        one(dialog, "button[value=cancel]").click()
        assert document_row(browser, doc_id) is not None  # cancelled: still there
        click(browser, one(document_row(browser, doc_id), "button.danger"))
        wait_for(browser, lambda d: dialog.is_displayed())
        one(dialog, "#confirm-ok").click()
        wait_for(browser, lambda d: document_row(d, doc_id) is None)
        assert doc_id not in [d["doc_id"] for d in site.api.get("/documents").json()]

        # The token went only into Authorization headers, never into an address.
        requests = request_log(browser)
        assert any(r["headers"].get("Authorization") == f"Bearer {TOKEN}" for r in requests)
        assert not any(TOKEN in r["url"] for r in requests)
        assert TOKEN not in browser.current_url
    finally:
        remove_quietly(site, doc_id)


def test_wrong_token_is_refused(browser: Any, site: Site) -> None:
    box = open_admin_signed_out(browser, site)
    box.send_keys("not-the-token")
    one(browser, "#login-form button[type=submit]").click()
    error = one(browser, "#login-error")
    wait_for(browser, lambda d: error.is_displayed())
    assert error.text == "Mã quản trị không đúng."
    assert not one(browser, "#upload").is_displayed()
    assert css(browser, "#documents button.danger") == []


def test_report_with_html_shows_it_as_text(browser: Any, site: Site, tmp_path: Path) -> None:
    doc_id = HTML_REPORT_NAME
    try:
        sign_in(browser, site)
        result = upload(browser, tmp_path, HTML_REPORT_NAME, HTML_REPORT)
        assert result.startswith("Đã thêm 1 báo cáo"), result
        row = wait_for(browser, lambda d: document_row(d, doc_id))
        assert HTML_TITLE in row.text
        assert css(row, "b, script, img") == []

        open_chat(browser, site)
        bubble = ask(browser, HTML_QUESTION)
        passage = css(bubble, ".passage")[0]  # the best passage, always shown
        assert HTML_REPORT_NAME in one(passage, ".source-meta").text
        assert one(passage, ".source-title").text == HTML_TITLE
        assert '<img src=x onerror="window.pwned = 2">' in one(passage, ".passage-text").text
        click(browser, one(passage, "button.link"))
        wait_for(browser, lambda d: css(passage, ".context-paragraph"))
        assert css(bubble, "b, script, img") == []
        assert browser.execute_script("return window.pwned === undefined")
    finally:
        remove_quietly(site, doc_id)


def test_admin_page_says_when_admin_is_off(browser: Any, service: QAService) -> None:
    with serving(service, make_settings(admin_token=None)) as plain:
        browser.get(plain.url + "/admin")
        notice = one(browser, "#disabled")
        wait_for(browser, lambda d: notice.is_displayed())
        assert "QABOT_ADMIN_TOKEN" in notice.text and "đang tắt" in notice.text
        wait_for(browser, lambda d: css(d, "#documents tbody tr[data-doc-id]"))
        assert not one(browser, "#login").is_displayed()
        assert not one(browser, "#upload").is_displayed()
        assert not one(browser, "#reindex").is_displayed()
        assert css(browser, "#documents button.danger") == []


def test_reindex_from_the_admin_page(browser: Any, site: Site) -> None:
    sign_in(browser, site)
    one(browser, "#reindex").click()
    result = one(browser, "#reindex-result")
    wait_for(browser, lambda d: result.text.startswith(("Đã cập nhật", "Chỉ mục")))
    assert result.text.startswith("Đã cập nhật. Chỉ mục hiện có 5 báo cáo"), result.text


def open_admin(driver: Any, site: Site, address: str = "/admin") -> None:
    driver.get(site.url + address)
    wait_for(driver, lambda d: css(d, "#documents tbody tr[data-doc-id]"))


def shown_doc_ids(driver: Any) -> list[str]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#documents tbody tr[data-doc-id]')]"
        ".map((row) => row.dataset.docId);"
    )


def list_requests(driver: Any) -> list[dict[str, list[str]]]:
    """The query parameters of the GET /admin/documents requests since the log was read."""
    from urllib.parse import parse_qs, urlsplit

    return [
        parse_qs(urlsplit(r["url"]).query)
        for r in request_log(driver)
        if urlsplit(r["url"]).path == "/admin/documents"
    ]


def clear_box(box: Any) -> None:
    """Empty a text box with keys, as a person would (so the page gets its input events)."""
    from selenium.webdriver.common.keys import Keys

    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE)


def test_admin_filter_narrows_the_list(browser: Any, site: Site) -> None:
    everything = [d["doc_id"] for d in admin_documents(site)["documents"]]
    listed = site.api.get("/documents").json()
    hai_phong = [d["doc_id"] for d in listed if "Hải Phòng" in d["title"]]
    assert 0 < len(hai_phong) < len(everything)

    open_admin(browser, site)
    wait_for(browser, lambda d: shown_doc_ids(d) == everything)
    count = one(browser, "#doc-count")
    assert count.text == "5 báo cáo"
    box = one(browser, "#doc-filter")
    assert box.get_attribute("type") == "search"
    assert "không dấu" in box.get_attribute("placeholder")
    assert one(browser, "label[for=doc-filter]").get_attribute("textContent").strip()
    assert not one(browser, "#doc-more").is_displayed()

    browser.get_log("performance")
    box.send_keys("hai phong")
    wait_for(browser, lambda d: shown_doc_ids(d) == hai_phong)
    wait_for(browser, lambda d: count.text == f"{len(hai_phong)} báo cáo khớp «hai phong»")
    sent = list_requests(browser)
    assert len(sent) == 1, sent  # typed in one go: one request, after the pause
    assert sent[0]["q"] == ["hai phong"] and sent[0]["offset"] == ["0"]

    box.send_keys(" zzzz")
    empty = "Không có báo cáo nào khớp «hai phong zzzz»."
    wait_for(browser, lambda d: one(d, "#documents tbody").text == empty)
    assert count.text == "0 báo cáo khớp «hai phong zzzz»"
    assert not one(browser, "#doc-more").is_displayed()

    clear_box(box)
    wait_for(browser, lambda d: shown_doc_ids(d) == everything)
    wait_for(browser, lambda d: count.text == "5 báo cáo")


def test_admin_filter_shows_only_the_latest_answer(browser: Any, site: Site) -> None:
    hai_phong = [d["doc_id"] for d in admin_documents(site, q="hai phong")["documents"]]
    can_tho = [d["doc_id"] for d in admin_documents(site, q="can tho")["documents"]]
    assert hai_phong and can_tho and set(hai_phong) != set(can_tho)
    open_admin(browser, site)
    # A slow network for the first filter only: its answer comes after the second one's.
    browser.execute_script(
        "const send = window.fetch;"
        "window.fetch = (url, options) => {"
        "  if (!String(url).includes('q=can')) return send(url, options);"
        "  window.slowSent = true;"
        "  return send(url, options).then((answer) => new Promise((go) => setTimeout(() => {"
        "    window.slowAnswered = true; go(answer); }, 1500)));"
        "};"
    )
    box = one(browser, "#doc-filter")
    box.send_keys("can tho")
    wait_for(browser, lambda d: d.execute_script("return window.slowSent === true"))
    clear_box(box)
    box.send_keys("hai phong")
    count = one(browser, "#doc-count")
    wait_for(browser, lambda d: count.text.endswith("«hai phong»"))
    assert shown_doc_ids(browser) == hai_phong
    assert not browser.execute_script("return window.slowAnswered === true")
    wait_for(browser, lambda d: d.execute_script("return window.slowAnswered === true"))
    browser.execute_script("return new Promise((done) => setTimeout(done, 300));")
    assert shown_doc_ids(browser) == hai_phong  # the late "can tho" answer was dropped
    assert count.text.endswith("«hai phong»")


def test_admin_more_button_adds_the_next_page(browser: Any, site: Site) -> None:
    everything = [d["doc_id"] for d in admin_documents(site)["documents"]]
    assert len(everything) == 5
    browser.get_log("performance")
    open_admin(browser, site, "/admin?page_size=2")
    wait_for(browser, lambda d: shown_doc_ids(d) == everything[:2])
    count = one(browser, "#doc-count")
    assert count.text == "Đang hiện 2/5 báo cáo"
    more = one(browser, "#doc-more")
    assert more.is_displayed() and more.text == "Xem thêm"
    click(browser, more)
    wait_for(browser, lambda d: shown_doc_ids(d) == everything[:4])
    assert count.text == "Đang hiện 4/5 báo cáo"
    assert more.is_displayed()
    click(browser, more)
    wait_for(browser, lambda d: shown_doc_ids(d) == everything)
    assert count.text == "5 báo cáo"
    assert not more.is_displayed()
    sent = list_requests(browser)
    assert [(r["offset"], r["limit"]) for r in sent] == [
        (["0"], ["2"]),
        (["2"], ["2"]),
        (["4"], ["2"]),
    ]

    # A filter starts again from its first page.
    hai_phong = [d["doc_id"] for d in admin_documents(site, q="hai phong")["documents"]]
    one(browser, "#doc-filter").send_keys("hai phong")
    wait_for(browser, lambda d: count.text.endswith("«hai phong»"))
    assert shown_doc_ids(browser) == hai_phong[:2]
    assert more.is_displayed() == (len(hai_phong) > 2)


@pytest.mark.parametrize(("asked", "limit"), [("0", "1"), ("9999", "500"), ("abc", "50")])
def test_admin_page_size_from_the_address_is_clamped(
    browser: Any, site: Site, asked: str, limit: str
) -> None:
    browser.get_log("performance")
    open_admin(browser, site, f"/admin?page_size={asked}")
    assert [r["limit"] for r in list_requests(browser)] == [[limit]]
