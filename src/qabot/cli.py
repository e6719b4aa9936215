"""The `qabot` command. Thin: parses arguments, calls the library, prints."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from qabot.config import Settings, get_settings
from qabot.embedding import Embedder, EmbedderError, create_embedder
from qabot.index import BuildSummary, IndexStoreError, build_index
from qabot.index.store import current_version, read_manifest
from qabot.library import LibraryError
from qabot.service import NotReadyError, QAService, QuestionError, clean_question

log = logging.getLogger("qabot")


class CommandError(Exception):
    """Ends the command with a one-line message and exit status 1."""


def _print_json(data: object) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def _embedder(args: argparse.Namespace, settings: Settings) -> Embedder:
    return create_embedder(args.embedder or settings.embedder, settings.embedding_model)


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
    summary = build_index(
        docs,
        Path(args.index or settings.index_dir),
        _embedder(args, settings),
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
    service = service_from_settings(settings, args.index, args.embedder, args.docs)
    added, summary = service.add_documents(files)
    if args.json:
        _print_json({"added": [a.doc_id for a in added], **_build_json(summary)})
    else:
        for item in added:
            print(f"Đã thêm {item.doc_id}")
        _print_build_summary(summary)
    return 0


def cmd_index_remove(args: argparse.Namespace, settings: Settings) -> int:
    service = service_from_settings(settings, args.index, args.embedder, args.docs)
    summary = service.remove_documents(args.doc_ids)
    if args.json:
        _print_json({"removed_ids": args.doc_ids, **_build_json(summary)})
    else:
        for doc_id in args.doc_ids:
            print(f"Đã xóa {doc_id}")
        _print_build_summary(summary)
    return 0


def cmd_index_status(args: argparse.Namespace, settings: Settings) -> int:
    index_dir = Path(args.index or settings.index_dir)
    version = current_version(index_dir)
    if version is None:
        raise CommandError(f"chưa có chỉ mục trong {index_dir}; hãy chạy: qabot index build")
    manifest = read_manifest(index_dir, version)
    status = {
        "index_dir": str(index_dir),
        "version": version,
        "created_at": manifest.get("created_at"),
        "embedder": manifest.get("embedder_id"),
        "dim": manifest.get("dim"),
        "documents": manifest.get("documents"),
        "passages": manifest.get("passages"),
        "skipped": manifest.get("skipped", []),
    }
    if args.json:
        _print_json(status)
    else:
        print(f"Chỉ mục {index_dir} — phiên bản {version} (tạo lúc {status['created_at']})")
        print(
            f"{status['documents']} tài liệu, {status['passages']} đoạn trích; "
            f"mô hình {status['embedder']}"
        )
        for skipped in status["skipped"]:
            print(f"Bỏ qua {skipped['source']}: {skipped['reason']}")
    return 0


def _service(args: argparse.Namespace, settings: Settings) -> QAService:
    service = QAService(Path(args.index or settings.index_dir), _embedder(args, settings))
    if service.index is None:
        raise CommandError(
            f"chưa có chỉ mục trong {service.index_dir}; hãy chạy: qabot index build"
        )
    return service


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    clean_question(args.question)  # a blank question fails before any model loads
    service = _service(args, settings)
    answer = service.ask(args.question, args.top_k or settings.top_k, args.history)
    if args.json:
        _print_json(answer.to_dict())
        return 0
    if not answer.found:
        print("Không tìm thấy thông tin này trong các báo cáo hiện có.")
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

    sets = [evaluation.load_set(Path(f)) for f in args.files]
    embedder = _embedder(args, settings)
    index_dir = Path(args.index or settings.index_dir)
    report: dict = {}
    plain = [s for s in sets if not s.contexts]
    squad = [s for s in sets if s.contexts]
    if plain:
        service = QAService(index_dir, embedder)
        if service.index is None:
            raise CommandError(f"chưa có chỉ mục trong {index_dir}; hãy chạy: qabot index build")
        for s in plain:
            results = evaluation.run(s.items, lambda q, h=None: service.ask(q, args.top_k, h))
            report[s.name] = evaluation.metrics(results)
    if squad:
        eval_root = index_dir / "eval"
        docs = evaluation.write_context_corpus(squad, eval_root)
        squad_index = docs.parent / "index"
        build_index(docs, squad_index, embedder, wait_seconds=600)
        service = QAService(squad_index, embedder)
        for s in squad:
            results = evaluation.run(s.items, lambda q: service.ask(q, args.top_k))
            report[s.name] = evaluation.metrics(results)
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


def service_from_settings(
    settings: Settings,
    index: str | None = None,
    embedder: str | None = None,
    docs: str | None = None,
) -> QAService:
    """The QAService of `serve`, `bot` and the library commands: configured embedder, index
    and docs folder, each overridable from the command line."""
    return QAService(
        Path(index or settings.index_dir),
        create_embedder(embedder or settings.embedder, settings.embedding_model),
        docs_dir=Path(docs or settings.docs_dir),
        max_upload_bytes=settings.max_upload_bytes,
    )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.api import serve

    service = service_from_settings(settings, args.index, args.embedder)
    return serve(
        service,
        settings,
        host=args.host if args.host is not None else settings.host,
        port=args.port if args.port is not None else settings.port,
        watch_docs=args.watch,
    )


def cmd_bot(args: argparse.Namespace, settings: Settings) -> int:
    from qabot.telegram import run_bot
    from qabot.telegram.app import token_of

    token_of(settings)  # no token: fail before loading any model
    service = service_from_settings(settings, args.index, args.embedder)
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
    common(ask)
    ask.set_defaults(handler=cmd_ask)

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


def main(argv: list[str] | None = None) -> int:
    from qabot.telegram.app import BotConfigError

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
    except (
        CommandError,
        IndexStoreError,
        EmbedderError,
        NotReadyError,
        LibraryError,
        BotConfigError,
    ) as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 1
    except QuestionError as exc:
        print(f"Lỗi: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Đã dừng.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
