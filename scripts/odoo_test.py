#!/usr/bin/env python3
"""README command 2 (``make test``): test crm_lifecycle on a fresh database.

1. Odoo's own runner installs the module with demo data on a new database and
   runs its at_install and post_install tests (``--test-tags /crm_lifecycle``).
2. pytest (pytest-odoo) runs the repository-level ``tests/`` on that database.

Fails on any failed test and on any WARNING, ERROR or CRITICAL log line,
then prints one line ``N passed, M failed`` summing both runners.
"""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap  # noqa: E402

RESULT = re.compile(
    r"odoo\.tests\.result: (\d+) failed, (\d+) error\(s\) of (\d+) tests"
)
# Odoo's log format: "<date> <time> <pid> <LEVEL> <db> <logger>: <message>"
BAD_LINE = re.compile(r"^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) ")
PYTEST_SUMMARY = re.compile(r"(\d+) (passed|failed|error|errors)\b")


def database_name():
    # One database per checkout, so two clones never drop each other's.
    tag = hashlib.sha256(str(bootstrap.REPO_ROOT).encode()).hexdigest()[:8]
    return f"crm_lifecycle_test_{tag}"


def psql_env(prepared):
    return bootstrap.prepared_pg_env(prepared)


def drop_database(prepared, name):
    bootstrap.pgtools(Path(prepared["VENV"]), "drop", name, env=psql_env(prepared))


def run_odoo_tests(prepared, database, log_path):
    command = [
        prepared["PYTHON"],
        prepared["ODOO_BIN"],
        "--config",
        prepared["ODOO_RC"],
        "--database",
        database,
        "--init",
        "crm_lifecycle",
        "--test-enable",
        "--test-tags",
        "/crm_lifecycle",
        "--stop-after-init",
        "--http-port",
        str(bootstrap._free_port()),
        "--max-cron-threads",
        "0",
        "--log-level",
        "info",
    ]
    print(
        f"[test] odoo: installing crm_lifecycle on {database} and testing it",
        flush=True,
    )
    counts = {"passed": 0, "failed": 0}
    bad_lines = []
    found_result = False
    verbose = os.environ.get("VERBOSE") or os.environ.get("CI")
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=psql_env(prepared),
        )
        for line in process.stdout:
            log_file.write(line)
            if BAD_LINE.match(line):
                bad_lines.append(line.rstrip())
            match = RESULT.search(line)
            if match:
                found_result = True
                failed, errors, total = map(int, match.groups())
                counts["failed"] += failed + errors
                counts["passed"] += total - failed - errors
            if verbose or BAD_LINE.match(line) or "odoo.tests.stats" in line or match:
                print(line, end="", flush=True)
            elif not line.startswith(("20", " ")) and line.strip():
                print(line, end="", flush=True)  # tracebacks, test output
        returncode = process.wait()
    if returncode or not found_result:
        print(f"[test] odoo exited with {returncode}; full log: {log_path}")
        counts["failed"] = max(counts["failed"], 1)
    return counts, bad_lines


def run_pytest(prepared, database):
    command = [
        prepared["PYTHON"],
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--odoo-config={prepared['ODOO_RC']}",
        f"--odoo-database={database}",
        str(bootstrap.REPO_ROOT / "tests"),
    ]
    print("[test] pytest: repository tests", flush=True)
    env = {**psql_env(prepared), **prepared}
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    print(process.stdout, end="")
    print(process.stderr, end="", file=sys.stderr)
    counts = {"passed": 0, "failed": 0}
    summary = process.stdout.strip().splitlines()[-1:] or [""]
    for number, word in PYTEST_SUMMARY.findall(summary[0]):
        key = "passed" if word == "passed" else "failed"
        counts[key] += int(number)
    if process.returncode and not counts["failed"]:
        counts["failed"] = 1  # pytest itself broke (collection, usage)
    return counts


def main():
    try:
        prepared = bootstrap.bootstrap()
    except bootstrap.BootstrapError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    database = database_name()
    log_dir = bootstrap.CACHE / "logs"
    log_dir.mkdir(exist_ok=True)
    log_path = log_dir / f"{database}.log"
    drop_database(prepared, database)
    odoo_counts, bad_lines = run_odoo_tests(prepared, database, log_path)
    pytest_counts = run_pytest(prepared, database)
    passed = odoo_counts["passed"] + pytest_counts["passed"]
    failed = odoo_counts["failed"] + pytest_counts["failed"]
    if bad_lines:
        print(
            f"[test] {len(bad_lines)} WARNING/ERROR log line(s) (full log: {log_path}):"
        )
        for line in bad_lines:
            print(f"    {line}")
    print(f"{passed} passed, {failed} failed")
    if failed or bad_lines or not passed:
        return 1
    drop_database(prepared, database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
