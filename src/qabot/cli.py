"""The `qabot` command. Thin: parses arguments, calls the library, prints."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from qabot.config import Settings, get_settings
from qabot.messages import NOT_FOUND, no_index_in
from qabot.service import (
    BuildSummary,
    CommandError,
    Embedder,
    IndexReport,
    LogUnavailableError,
    QabotError,
    QAService,
    QuestionError,
    QuestionLog,
    build_library,
    calibrate,
    clean_question,
    create_embedder,
    index_status,
    inspect_index,
    open_log,
    parse_period,
)

log = logging.getLogger("qabot")


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _embedder(args: argparse.Namespace, settings: Settings, lazy: bool = False) -> Embedder:
    """The configured embedder; ``lazy`` for a command that may never embed (a build with
    nothing new, a removal, the question report): its model is loaded only if needed."""
    return create_embedder(
        args.embedder or settings.embedder,
        settings.embedding_model,
        lazy,
        settings.embedding_engine,
    )


def _progress_printer(enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}
    labels = {"reading": "Đọc tài liệu", "embedding": "Tạo vector", "writing": "Ghi chỉ mục"}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total, desc=labels.get(stage, stage), file=sys.stderr, leave=False
            )
        bar.total = total
        bar.n = done
        bar.refresh()
        if done >= total:
            bar.close()

    return progress


def _print_build_summary(summary: BuildSummary) -> None:
    print(
        f"Chỉ mục: {summary.documents} tài liệu, {summary.passages} đoạn trích "
        f"({summary.embedded} tạo vector mới, {summary.reused} dùng lại) "
        f"trong {summary.seconds:.1f} giây."
    )
    print(
        f"Thay đổi: {summary.added} thêm, {summary.changed} sửa, {summary.removed} xóa, "
        f"{summary.unchanged} giữ nguyên."
    )
    if not summary.published:
        print("Không có gì thay đổi; phiên bản chỉ mục hiện tại vẫn được dùng.")
    for skipped in summary.skipped_files:
        print(f"Bỏ qua {skipped.source}: {skipped.reason}")


def _build_json(summary: BuildSummary) -> dict:
    data = summary.as_dict()
    ordered = {
        k: data[k] for k in ("documents", "passages", "embedded", "reused", "skipped", "seconds")
    }
    return {**ordered, **{k: v for k, v in data.items() if k not in ordered}}


def cmd_index_build(args: argparse.Namespace, settings: Settings) -> int:
    docs = Path(args.docs or settings.docs_dir)
    if not docs.is_dir():
        raise CommandError(f"không có thư mục tài liệu {docs}")
    summary = build_library(
        docs,
        Path(args.index or settings.index_dir),
        _embedder(args, settings, lazy=True),
        progress=_progress_printer(not args.json and sys.stderr.isatty()),
        wait_seconds=args.wait,
    )
    if args.json:
        _print_json(_build_json(summary))
    else:
        _print_build_summary(summary)
    return 0


def cmd_index_add(args: argparse.Namespace, settings: Settings) -> int:
    files = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise CommandError(f"không tìm thấy tệp {name}")
        files.append((path.name, path.read_bytes()))
    service = service_from_settings(settings, args.index, args.embedder, args.docs, serve=False)
    added, summary = service.add_documents(files)
    if args.json:
        _print_json({"added": [a.doc_id for a in added], **_build_json(summary)})
    else:
        for item in added:
            print(f"Đã thêm {item.doc_id}")
        _print_build_summary(summary)
    return 0


def cmd_index_remove(args: argparse.Namespace, settings: Settings) -> int:
    service = service_from_settings(settings, args.index, args.embedder, args.docs, serve=False)
    summary = service.remove_documents(args.doc_ids)
    if args.json:
        _print_json({"removed_ids": args.doc_ids, **_build_json(summary)})
    else:
        for doc_id in args.doc_ids:
            print(f"Đã xóa {doc_id}")
        _print_build_summary(summary)
    return 0


def _print_damage(report: IndexReport) -> None:
    if report.pointer is not None:
        print(f"Hỏng: {report.pointer.describe()}")
    for version, problems in report.versions.items():
        for problem in problems:
            print(f"Phiên bản {version} hỏng: {problem.describe()}")
    if report.cache_problem:
        print(
            f"Bộ nhớ đệm vector hỏng ({report.cache_problem}); "
            "lần chạy qabot index build tới sẽ tạo lại"
        )


def cmd_index_status(args: argparse.Namespace, settings: Settings) -> int:
    status = index_status(Path(args.index or settings.index_dir))  # no good version: error
    if args.json:
        _print_json(status.as_dict())
    else:
        print(
            f"Chỉ mục {status.index_dir} — phiên bản {status.version} (tạo lúc {status.created_at})"
        )
        print(
            f"{status.documents} tài liệu, {status.passages} đoạn trích; mô hình {status.embedder}"
        )
        for skipped in status.skipped:
            print(f"Bỏ qua {skipped['source']}: {skipped['reason']}")
        if not status.report.ok:
            _print_damage(status.report)
            print("Tình trạng: HỎNG — hãy chạy qabot index build để sửa.")
    return 0 if status.report.ok else 1


def cmd_index_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Check every version's files against their checksums, CURRENT and the cache."""
    index_dir = Path(args.index or settings.index_dir)
    report = inspect_index(index_dir)
    if not report.versions and report.live is None:
        raise CommandError(no_index_in(index_dir))
    if args.json:
        _print_json(report.as_dict())
        return 0 if report.ok else 1
    for version, problems in report.versions.items():
        mark = "hiện hành, " if version == report.live else ""
        print(f"Phiên bản {version} ({mark}{'tốt' if not problems else 'HỎNG'})")
        for problem in problems:
            print(f"    {problem.describe()}")
    if report.pointer is not None:
        print(f"Hỏng: {report.pointer.describe()}")
    if report.cache_problem:
        print(f"Bộ nhớ đệm vector hỏng: {report.cache_problem}")
    if report.ok:
        print("Chỉ mục nguyên vẹn.")
        return 0
    if report.serving:
        print(f"Dịch vụ sẽ dùng phiên bản tốt gần nhất: {report.serving}.")
    print("Hãy chạy qabot index build để tạo lại phiên bản tốt từ thư mục tài liệu.")
    return 1


def _question_log(settings: Settings, index: str | None) -> QuestionLog | None:
    return open_log(settings.log_db, Path(index or settings.index_dir), settings.log_days)


def _service(args: argparse.Namespace, settings: Settings, log: bool = False) -> QAService:
    index_dir = Path(args.index or settings.index_dir)
    question_log = _question_log(settings, args.index) if log else None
    service = QAService(index_dir, _embedder(args, settings), question_log=question_log)
    if service.index is None:
        service.close()
    if service.index is None and service.damage:
        raise CommandError(
            f"chỉ mục trong {service.index_dir} bị hỏng; xem chi tiết bằng qabot index verify, "
            "rồi chạy: qabot index build"
        )
    if service.index is None:
        raise CommandError(no_index_in(service.index_dir))
    return service


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    clean_question(args.question)  # a blank question fails before any model loads
    service = _service(args, settings, log=args.log)
    try:
        answer = service.ask(
            args.question, args.top_k or settings.top_k, args.history, channel="cli"
        )
    finally:
        service.close()  # writes what the log still holds
    if args.json:
        _print_json(answer.to_dict())
        return 0
    if not answer.found:
        print(NOT_FOUND)
        hint = service.hint_for(answer)
        if hint:
            print(hint)
        return 0
    print(answer.answer)
    print()
    for p in answer.passages:
        date = f", {p.date}" if p.date else ""
        print(f"[{p.rank}] {p.title}{date} — {p.source}, đoạn {p.paragraph} (điểm {p.score:.2f})")
        print(f"    {p.text[:400]}{'…' if len(p.text) > 400 else ''}")
    return 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from qabot import evaluation

    embedder = _embedder(args, settings)

    def open_service(index_dir: Path):
        service = QAService(index_dir, embedder)
        if service.index is None:
            raise CommandError(no_index_in(index_dir))
        return lambda question, history=None: service.ask(question, args.top_k, history)

    index_dir = Path(args.index or settings.index_dir)
    report = evaluation.evaluate([Path(f) for f in args.files], index_dir, open_service, embedder)
    if args.json:
        _print_json(report)
    else:
        for name, m in report.items():
            print(f"== {name}: {m['questions']} câu hỏi ({m['answerable']} có đáp án)")
            print(
                f"   hit@1 {m['hit@1']:.3f}  hit@3 {m['hit@3']:.3f}  hit@5 {m['hit@5']:.3f}  "
                f"MRR@10 {m['mrr@10']:.3f}  answer@1 {m['answer@1']:.3f}"
            )
            not_found = "—" if m["not_found"] is None else f"{m['not_found']:.3f}"
            print(
                f"   found {m['found']:.3f}  not-found {not_found}  "
                f"latency median {m['latency_ms_median']} ms, p95 {m['latency_ms_p95']} ms"
            )
    return 0


def cmd_calibrate(args: argparse.Namespace, settings: Settings) -> int:
    index_dir = Path(args.index or settings.index_dir)
    docs_dir = Path(args.docs or settings.docs_dir)
    embedder = _embedder(args, settings)
    result = calibrate(
        index_dir,
        docs_dir,
        embedder,
        questions=args.questions,
        progress=None if args.json else lambda line: print(line, file=sys.stderr),
    )
    summary = {
        "embedder": embedder.id,
        "path": str(result.path),
        "questions": result.questions,
        "threshold": result.models.confidence.threshold,
        "found_answerable": result.found_answerable,
        "not_found_other_half": result.not_found_other_half,
    }
    if args.json:
        _print_json(summary)
    else:
        print(
            f"Đã hiệu chỉnh mô hình độ tin cậy cho {embedder.id} trên {result.questions} câu hỏi "
            f"sinh từ các báo cáo: ngưỡng {summary['threshold']}, "
            f"{result.found_answerable:.0%} câu có đáp án được tìm thấy, "
            f"{result.not_found_other_half:.0%} câu ngoài phạm vi bị từ chối."
        )
        print(f"Đã ghi {result.path}. Dịch vụ đang chạy dùng mô hình này sau khi khởi động lại.")
    return 0


def service_from_settings(
    settings: Settings,
    index: str | None = None,
    embedder: str | None = None,
    docs: str | None = None,
    log: bool = False,
    serve: bool = True,
) -> QAService:
    """The QAService of `serve`, `bot` and the library commands: configured embedder, index
    and docs folder, each overridable from the command line; with ``log``, the question log
    of QABOT_LOG_DB; without ``serve`` (the library commands) the index is not loaded."""
    return QAService(
        Path(index or settings.index_dir),
        # A library-only service may never embed (a removal): its model loads if needed.
        create_embedder(
            embedder or settings.embedder,
            settings.embedding_model,
            lazy=not serve,
            engine=settings.embedding_engine,
        ),
        docs_dir=Path(docs or settings.docs_dir),
        max_upload_bytes=settings.max_upload_bytes,
        question_log=_question_log(settings, index) if log else None,
        serve=serve,
    )


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    try:
        period = parse_period(args.since)
    except ValueError:
        raise CommandError(
            f"khoảng thời gian {args.since!r} không hợp lệ; ví dụ: 30d (ngày), 12h (giờ), 2w (tuần)"
        ) from None
    question_log = _question_log(settings, args.index)
    if question_log is None:
        raise CommandError("nhật ký câu hỏi đang tắt (QABOT_LOG_DB=off)")
    if not question_log.path.exists():
        question_log.close()
        raise CommandError(f"chưa có nhật ký câu hỏi tại {question_log.path}")
    service = QAService(
        Path(args.index or settings.index_dir),
        _embedder(args, settings, lazy=True),
        question_log=question_log,
    )
    try:
        report = service.report(period)
    except LogUnavailableError as exc:
        raise CommandError(f"không đọc được nhật ký câu hỏi ({exc})") from None
    finally:
        service.close()
    if args.json:
        _print_json(report)
    else:
        print(format_report(report))
    return 0


def format_report(report: dict) -> str:
    """The report for a terminal, in Vietnamese."""
    lines = [f"Báo cáo câu hỏi từ {report['since']} đến {report['until']}"]
    total = report["questions"]
    if not total:
        lines.append("Chưa có câu hỏi nào trong khoảng thời gian này.")
        return "\n".join(lines)
    latency = report["latency_ms"]
    lines.append(
        f"{total} câu hỏi, tìm thấy câu trả lời {report['found_rate']:.0%}; thời gian trả lời "
        f"trung vị {latency['median']} ms, p95 {latency['p95']} ms."
    )
    feedback = report["feedback"]
    lines.append(f"Phản hồi: {feedback['helpful']} 👍, {feedback['wrong']} 👎.")
    lines.append("")
    lines.append("Số câu hỏi theo ngày và kênh:")
    for day in report["per_day"]:
        channels = ", ".join(f"{name} {count}" for name, count in day["channels"].items())
        lines.append(f"  {day['date']}: {day['total']} ({channels})")
    sections = [
        ("Câu hỏi được hỏi nhiều nhất:", report["most_asked"], "question", "count"),
        ("Câu hỏi chưa có câu trả lời (gộp các câu gần giống nhau):", report["unanswered"],
         "question", "count"),
        ("Báo cáo được trích dẫn nhiều nhất:", report["most_cited"], "title", "answers"),
        ("Báo cáo ít được trích dẫn nhất:", report["least_cited"], "title", "answers"),
    ]  # fmt: skip
    for title, rows, text_key, count_key in sections:
        lines.append("")
        lines.append(title)
        lines.extend(f"  {row[count_key]:>4} × {row[text_key]}" for row in rows)
        if not rows:
            lines.append("  (không có)")
    lines.append("")
    lines.append("Câu trả lời bị đánh dấu sai:")
    for wrong in report["wrong_answers"]:
        cited = "; ".join(f"{c['doc_id']} đoạn {c['paragraph']}" for c in wrong["citations"][:3])
        comment = f" — góp ý: {wrong['comment']}" if wrong["comment"] else ""
        lines.append(f"  [{wrong['at']}] {wrong['question']}{comment}")
        lines.append(f"      trích dẫn: {cited or '(không có)'}")
    if not report["wrong_answers"]:
        lines.append("  (không có)")
    return "\n".join(lines)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    # The command line starts the interfaces: the HTTP API, and beside it on the same server
    # the web pages and, when one is configured, the Telegram webhook. No interface imports
    # another.
    from qabot.http import serve
    from qabot.telegram import attach_webhook
    from qabot.web import mount_web

    service = service_from_settings(settings, args.index, args.embedder, log=True)

    def with_pages(app) -> None:
        mount_web(app, service, settings)
        if attach_webhook(app, service, settings):
            log.info("Telegram webhook served at /telegram/<secret>")

    return serve(
        service,
        settings,
        host=args.host if args.host is not None else settings.host,
        port=args.port if args.port is not None else settings.port,
        watch_docs=args.watch,
        extend=with_pages,
    )


def cmd_bot(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.telegram import run_bot
    from qabot.telegram.config import token_of

    token_of(settings)  # no token: fail before loading any model
    service = service_from_settings(settings, args.index, args.embedder, log=True)
    return run_bot(service, settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qabot", description="Hỏi đáp tiếng Việt trên các báo cáo, có trích dẫn nguồn."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="ghi log chi tiết")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser, json_flag: bool = True) -> None:
        p.add_argument("--index", help="thư mục chỉ mục (mặc định QABOT_INDEX_DIR hoặc embeddings)")
        p.add_argument("--embedder", help="bundled hoặc sentence-transformers:<mô hình>")
        if json_flag:
            p.add_argument("--json", action="store_true", help="in kết quả dạng JSON")

    index = commands.add_parser("index", help="tạo và quản lý chỉ mục").add_subparsers(
        dest="index_command", required=True
    )
    build = index.add_parser("build", help="tạo hoặc cập nhật chỉ mục")
    build.add_argument(
        "--docs", help="thư mục tài liệu (mặc định QABOT_DOCS_DIR hoặc data/reports)"
    )
    build.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="chờ bản dựng khác chạy xong tối đa ngần này giây",
    )
    common(build)
    build.set_defaults(handler=cmd_index_build)
    add = index.add_parser("add", help="thêm tệp báo cáo vào thư mục tài liệu và cập nhật chỉ mục")
    add.add_argument("files", nargs="+", metavar="FILE")
    add.add_argument("--docs", help="thư mục tài liệu (mặc định QABOT_DOCS_DIR hoặc data/reports)")
    common(add)
    add.set_defaults(handler=cmd_index_add)
    remove = index.add_parser("remove", help="xóa tài liệu khỏi thư mục và chỉ mục")
    remove.add_argument("doc_ids", nargs="+", metavar="DOC_ID")
    remove.add_argument(
        "--docs", help="thư mục tài liệu (mặc định QABOT_DOCS_DIR hoặc data/reports)"
    )
    common(remove)
    remove.set_defaults(handler=cmd_index_remove)
    status = index.add_parser("status", help="xem chỉ mục hiện tại")
    common(status)
    status.set_defaults(handler=cmd_index_status)
    verify = index.add_parser("verify", help="kiểm tra các tệp chỉ mục có bị hỏng không")
    common(verify)
    verify.set_defaults(handler=cmd_index_verify)

    ask = commands.add_parser("ask", help="đặt một câu hỏi")
    ask.add_argument("question")
    ask.add_argument("--top-k", type=int, default=None)
    ask.add_argument(
        "--history",
        action="append",
        default=[],
        metavar="QUESTION",
        help="một câu hỏi trước đó của cuộc hội thoại (lặp lại được, cũ nhất trước)",
    )
    ask.add_argument(
        "--log",
        action="store_true",
        help="ghi câu hỏi vào nhật ký câu hỏi (QABOT_LOG_DB; mặc định không ghi)",
    )
    common(ask)
    ask.set_defaults(handler=cmd_ask)

    calibration = commands.add_parser(
        "calibrate", help="hiệu chỉnh mô hình độ tin cậy cho bộ tạo vector đang dùng"
    )
    calibration.add_argument("--questions", type=int, default=400)
    calibration.add_argument("--docs", help="thư mục tài liệu (mặc định QABOT_DOCS_DIR)")
    common(calibration)
    calibration.set_defaults(handler=cmd_calibrate)

    report = commands.add_parser(
        "report", help="thống kê câu hỏi: số lượng, tỷ lệ trả lời, câu chưa trả lời, phản hồi"
    )
    report.add_argument(
        "--since", default="30d", help="khoảng thời gian gần nhất: 30d (ngày), 12h, 2w"
    )
    common(report)
    report.set_defaults(handler=cmd_report)

    evaluate = commands.add_parser("eval", help="chấm điểm trên các bộ câu hỏi")
    evaluate.add_argument("files", nargs="+")
    evaluate.add_argument("--top-k", type=int, default=10)
    common(evaluate)
    evaluate.set_defaults(handler=cmd_eval)

    serve = commands.add_parser("serve", help="chạy HTTP API")
    serve.add_argument("--host", help="địa chỉ lắng nghe (mặc định QABOT_HOST hoặc 127.0.0.1)")
    serve.add_argument("--port", type=int, help="cổng (mặc định QABOT_PORT hoặc 8000)")
    serve.add_argument(
        "--watch", action="store_true", help="theo dõi thư mục tài liệu và tự cập nhật chỉ mục"
    )
    common(serve, json_flag=False)
    serve.set_defaults(handler=cmd_serve)

    bot = commands.add_parser("bot", help="chạy bot Telegram")
    common(bot, json_flag=False)
    bot.set_defaults(handler=cmd_bot)
    return parser


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as error:
        first = error.errors()[0]
        field = "_".join(str(part) for part in first["loc"]).upper()
        raise CommandError(f"cấu hình không hợp lệ: QABOT_{field} ({first['msg']})") from None


def _configure_logging(args: argparse.Namespace, settings: Settings | None) -> None:
    # Services log at their configured level; one-shot commands only warn unless -v.
    level = logging.INFO if args.verbose else logging.WARNING
    if settings is not None and args.command in ("serve", "bot") and not args.verbose:
        level = logging.getLevelName(settings.log_level.upper())
        level = level if isinstance(level, int) else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)
    # pypdf warns about each damaged file it reads; the refusal already says so in one line.
    logging.getLogger("pypdf").setLevel(logging.ERROR)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = _settings()
    except CommandError as exc:
        _configure_logging(args, None)
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    _configure_logging(args, settings)
    try:
        return args.handler(args, settings)
    except QuestionError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 2
    except QabotError as exc:  # every refusal qabot explains: one line, no traceback
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Đã dừng.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
