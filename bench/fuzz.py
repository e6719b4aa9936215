"""Property-based fuzzing of the HTTP API from its own /openapi.json (schemathesis); prints
JSON.

    python bench/fuzz.py [--index DIR] [--max-examples 40] [--max-time 600] [--seed 1]

Starts its own `qabot serve` on 127.0.0.1 over temporary copies of the sample reports and
index (bench/loopback.py; the admin token set, so the admin routes are fuzzed too, and the
rate limit off, since its 429 is tested in tests/test_openapi.py), runs `schemathesis run`
(the `bench` extra) with the checks below, and always stops the server. Passes (exit 0)
when no request got a 5xx and every response matched the schema: its status documented,
its content type, headers and body as documented, and data the schema forbids refused.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from xml.etree import ElementTree

from loopback import ADMIN_TOKEN, DEFAULT_INDEX, loopback_server

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
)


def schemathesis_command() -> list[str]:
    beside = Path(sys.executable).with_name("st")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("st") or shutil.which("schemathesis")
    if found is None:
        raise SystemExit("schemathesis is not installed: pip install -e '.[bench]'")
    return [found]


def summarise(junit: Path, output: str) -> dict:
    """Operations, generated cases and failures (by operation, with schemathesis' message)
    from its JUnit report and its summary line."""
    tree = ElementTree.parse(junit)
    failures = {}
    operations = 0
    for case in tree.iter("testcase"):
        operations += 1
        problems = [*case.iter("failure"), *case.iter("error")]
        if problems:
            text = " ".join((p.get("message") or p.text or "") for p in problems)
            failures[case.get("name", "?")] = text[:600]
    generated = re.search(r"(\d+) generated", output)
    return {
        "operations": operations,
        "cases": int(generated.group(1)) if generated else None,
        "failures": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", type=Path, default=DEFAULT_INDEX)
    parser.add_argument("--max-examples", type=int, default=40)
    parser.add_argument("--max-time", type=int, default=600, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # The question log on (beside the server, in its temporary folder): with it off,
    # /feedback and /admin/stats answer their documented 503 log_unavailable to every call.
    env = {"QABOT_RATE_LIMIT": "0", "QABOT_LOG_DB": "questions.sqlite"}
    with (
        loopback_server(args.index, env=env) as (url, folder),
        tempfile.TemporaryDirectory() as reports,
    ):
        junit = Path(reports) / "junit.xml"
        command = [
            *schemathesis_command(),
            "run",
            f"{url}/openapi.json",
            "--checks",
            ",".join(CHECKS),
            "--header",
            f"Authorization: Bearer {ADMIN_TOKEN}",
            "--max-examples",
            str(args.max_examples),
            "--max-time",
            str(args.max_time),
            "--seed",
            str(args.seed),
            "--workers",
            str(args.workers),
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-database",
            "none",
            "--request-timeout",
            "60",
            "--report",
            "junit",
            "--report-junit-path",
            str(junit),
            "--no-color",
        ]
        run = subprocess.run(command, capture_output=True, text=True, timeout=args.max_time + 300)
        server_errors = (folder / "server.log").read_text(encoding="utf-8").count("unhandled error")
        report = {
            "schemathesis_exit_status": run.returncode,
            "checks": list(CHECKS),
            "max_examples": args.max_examples,
            "seed": args.seed,
            **(summarise(junit, run.stdout) if junit.is_file() else {"error": run.stderr[-2000:]}),
            "server_unhandled_errors": server_errors,
        }
    report["pass"] = run.returncode == 0 and not report.get("failures") and not server_errors
    if not report["pass"]:
        report["schemathesis_output_tail"] = run.stdout[-4000:]
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
