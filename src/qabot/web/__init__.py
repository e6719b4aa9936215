"""The web pages: a chat page at ``/`` and an admin page at ``/admin``.

Plain HTML, CSS and JavaScript shipped as package data (no build step, nothing from a CDN:
deployments are often offline). The pages talk to the JSON API of the same app (POST /ask,
GET /documents, POST /feedback, ...; the chat page sends ``X-Qabot-Client: web`` with its
questions so the question log records the channel "web"); this module only adds what the
pages need beyond it:

* ``GET /`` and ``GET /admin``: the pages, with a Content-Security-Policy that allows scripts
  and styles from this server only (no inline code), so text from a report can never run.
* ``GET /static/...``: the pages' scripts, styles and icon.
* ``GET /examples?n=4``: ``{"questions": [...]}``, example questions about the current reports.
* ``GET /admin/config``: ``{"enabled": bool, "authorized": bool}``. ``enabled`` says whether
  the server has an admin token (QABOT_ADMIN_TOKEN); ``authorized`` whether the request's
  ``Authorization: Bearer`` header carries it, so the page can check a typed token without
  changing anything.
* ``GET /admin/documents?q=&offset=0&limit=50``: a page of the indexed reports, newest first,
  as ``{"total", "offset", "next_offset", "query", "documents"}``. ``q`` keeps the reports
  with a word of the title, file name or date starting with each word typed (diacritics
  optional); ``total`` counts them all, ``next_offset`` is where the next page starts (null
  on the last one). Each document is as in ``GET /documents`` plus the ``size`` of its file
  in bytes (``null`` when the file is not in the docs folder); only the page's files are
  stat'ed, so a library of 15,000 reports costs 50 stat calls, not 15,000.

Like every interface this talks to QAService only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from qabot.config import Settings, admin_token_matches
from qabot.service import MAX_DOCUMENTS_PAGE, MAX_FILTER_CHARS, QAService

STATIC_DIR = Path(__file__).resolve().parent / "static"
MAX_EXAMPLES = 8
ADMIN_PAGE = 50  # reports in one page of the admin table unless the page asks otherwise

# 'self' only: no inline scripts or styles, no other origin. Text from the index is inserted
# with textContent, and this policy is the second lock if that were ever got wrong.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def mount_web(app: FastAPI, service: QAService, settings: Settings) -> None:
    """Add the chat page, the admin page, their static files and JSON helpers to ``app``."""
    enabled = bool(settings.admin_token and settings.admin_token.get_secret_value())

    def page(name: str) -> FileResponse:
        return FileResponse(STATIC_DIR / name, media_type="text/html", headers=PAGE_HEADERS)

    @app.get("/", include_in_schema=False)
    async def chat_page() -> FileResponse:
        return page("index.html")

    @app.get("/admin", include_in_schema=False)
    async def admin_page() -> FileResponse:
        return page("admin.html")

    @app.get("/examples", include_in_schema=False)
    def examples(n: Annotated[int, Query(ge=1, le=MAX_EXAMPLES)] = 4) -> JSONResponse:
        return JSONResponse({"questions": service.example_questions(n)})

    @app.get("/admin/config", include_in_schema=False)
    async def admin_config(request: Request) -> JSONResponse:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        authorized = scheme.lower() == "bearer" and admin_token_matches(settings, given.strip())
        return JSONResponse({"enabled": enabled, "authorized": authorized})

    @app.get("/admin/documents", include_in_schema=False)
    def admin_documents(
        q: Annotated[str, Query(max_length=MAX_FILTER_CHARS)] = "",
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_DOCUMENTS_PAGE)] = ADMIN_PAGE,
    ) -> JSONResponse:
        page = service.find_documents(q, offset, limit)
        sizes = service.document_sizes(page.documents)  # this page's files only
        return JSONResponse(
            {
                "total": page.total,
                "offset": page.offset,
                "next_offset": page.next_offset,
                "query": page.query,
                "documents": [_document(d, sizes.get(d.doc_id)) for d in page.documents],
            }
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="web-static")


def _document(document: Any, size: int | None) -> dict[str, Any]:
    return {
        "doc_id": document.doc_id,
        "title": document.title,
        "date": document.date,
        "source": document.source,
        "passages": document.passages,
        "paragraphs": document.paragraphs,
        "size": size,
    }
