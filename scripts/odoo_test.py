#!/usr/bin/env python3
"""README command 2 (``make test``): test crm_lifecycle and its dashboard on a
fresh database.

1. Odoo's own runner installs the modules (crm_lifecycle, crm_lifecycle_dashboard
   with Odoo's Dashboards app) with demo data on a new database of the series
   (``SERIES``, 18.0 by default, see ``bootstrap.py``) and runs their
   at_install and post_install tests
   (``--test-tags /crm_lifecycle,/crm_lifecycle_dashboard``).
2. pytest (pytest-odoo) runs the repository-level ``tests/`` on that database.

Fails on any failed test and on any WARNING, ERROR or CRITICAL log line,
then prints one line ``N passed, M failed, K skipped`` summing both runners
(a skipped test is not a passed one). In CI (``CI`` set, as ``.ci/run`` does)
a skipped test fails the run too: the browser tests skip without Chromium.
"""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bootstrap  # noqa: E402

MODULES = ["crm_lifecycle", "crm_lifecycle_dashboard"]
RESULT = re.compile(
    r"odoo\.tests\.result: (\d+) failed, (\d+) error\(s\) of (\d+) tests"
)
# Odoo's log format: "<date> <time> <pid> <LEVEL> <db> <logger>: <message>"
BAD_LINE = re.compile(r"^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) ")
# odoo.tests.result.OdooTestResult.addSkip: "skipped <test> : <reason>", logged
# by the test's module; the skipped tests are counted in "of T tests"
ODOO_SKIP = re.compile(r"^\S+ \S+ \d+ INFO \S+ (\S+): skipped (.+?) : (.*?)\s*$")
PYTEST_SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped)\b")
# pytest -rs: "SKIPPED [1] tests/test_x.py:12: reason"
PYTEST_SKIP = re.compile(r"^SKIPPED \[\d+\] (.+?): (.*?)\s*$")


def new_counts():
    return {"passed": 0, "failed": 0, "skipped": 0, "skipped_tests": []}


def count_odoo_line(line, counts):
    """Add what one line of Odoo's log says to ``counts``; returns whether it
    is the result line."""
    skip = ODOO_SKIP.match(line)
    if skip:
        logger, test, reason = skip.groups()
        counts["skipped"] += 1
        counts["skipped_tests"].append(f"{logger}: {test} ({reason})")
        if not test.startswith(("setUpClass (", "setUpModule (")):
            # a test that started, then skipped: in "of T tests"
            counts["skipped_run"] = counts.get("skipped_run", 0) + 1
        return False
    match = RESULT.search(line)
    if not match:
        return False
    failed, errors, total = map(int, match.groups())
    counts["failed"] += failed + errors
    counts["total"] = counts.get("total", 0) + total
    return True


def finish_odoo_counts(counts):
    """Passed tests: those Odoo ran, less the failed and the skipped."""
    total = counts.pop("total", 0)
    skipped_run = counts.pop("skipped_run", 0)
    counts["passed"] = max(0, total - counts["failed"] - skipped_run)
    return counts


def count_pytest_output(stdout):
    """Counts of pytest's output (its last line, and the ``-rs`` lines that
    name the skipped tests)."""
    counts = new_counts()
    lines = stdout.strip().splitlines()
    for line in lines:
        skip = PYTEST_SKIP.match(line)
        if skip:
            counts["skipped_tests"].append("{} ({})".format(*skip.groups()))
    for number, word in PYTEST_SUMMARY.findall(lines[-1] if lines else ""):
        key = word if word in ("passed", "skipped") else "failed"
        counts[key] += int(number)
    return counts


def summary(odoo_counts, pytest_counts, ci=False):
    """The closing lines of the run and whether it failed on the counts."""
    totals = {
        key: odoo_counts[key] + pytest_counts[key]
        for key in ("passed", "failed", "skipped", "skipped_tests")
    }
    lines = [
        f"{totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['skipped']} skipped"
    ]
    failed = bool(totals["failed"]) or not totals["passed"]
    if totals["skipped"] and ci:
        failed = True
        lines.append(
            f"[test] CI: {totals['skipped']} test(s) skipped, a skipped test "
            "fails in CI (browser tests need Chromium):"
        )
        lines += [f"    {name}" for name in totals["skipped_tests"]]
    elif totals["skipped"]:
        lines.append("[test] skipped:")
        lines += [f"    {name}" for name in totals["skipped_tests"]]
    return lines, failed


def database_name():
    # One database per checkout, so two clones never drop each other's.
    tag = hashlib.sha256(str(bootstrap.REPO_ROOT).encode()).hexdigest()[:8]
    return bootstrap.database_name(f"crm_lifecycle_test_{tag}")


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
        ",".join(MODULES),
        *bootstrap.demo_options(True),
        "--test-enable",
        "--test-tags",
        ",".join(f"/{module}" for module in MODULES),
        "--stop-after-init",
        "--http-port",
        str(bootstrap._free_port()),
        "--max-cron-threads",
        "0",
        "--log-level",
        "info",
    ]
    print(
        f"[test] odoo: installing {', '.join(MODULES)} on {database} and testing",
        flush=True,
    )
    counts = new_counts()
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
            match = count_odoo_line(line, counts)
            found_result = found_result or match
            if (
                verbose
                or BAD_LINE.match(line)
                or "odoo.tests.stats" in line
                or match
                or ODOO_SKIP.match(line)
            ):
                print(line, end="", flush=True)
            elif not line.startswith(("20", " ")) and line.strip():
                print(line, end="", flush=True)  # tracebacks, test output
        returncode = process.wait()
    if returncode or not found_result:
        print(f"[test] odoo exited with {returncode}; full log: {log_path}")
        counts["failed"] = max(counts["failed"], 1)
    return finish_odoo_counts(counts), bad_lines


def run_pytest(prepared, database):
    command = [
        prepared["PYTHON"],
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        f"--odoo-config={prepared['ODOO_RC']}",
        f"--odoo-database={database}",
        "-rs",  # name the skipped tests
        str(bootstrap.REPO_ROOT / "tests"),
    ]
    print("[test] pytest: repository tests", flush=True)
    env = {**psql_env(prepared), **prepared}
    process = subprocess.run(command, env=env, capture_output=True, text=True)
    print(process.stdout, end="")
    print(process.stderr, end="", file=sys.stderr)
    counts = count_pytest_output(process.stdout)
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
    lines, failed = summary(odoo_counts, pytest_counts, ci=bool(os.environ.get("CI")))
    if bad_lines:
        print(
            f"[test] {len(bad_lines)} WARNING/ERROR log line(s) (full log: {log_path}):"
        )
        for line in bad_lines:
            print(f"    {line}")
    print("\n".join(lines))
    if failed or bad_lines:
        return 1
    drop_database(prepared, database)
    return 0


if __name__ == "__main__":
    sys.exit(main())
