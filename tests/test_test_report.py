# ruff: noqa: E501
"""``make test`` says what it ran: the counts of scripts/odoo_test.py, fed with
lines copied from real runs (Odoo's runner without Chromium, pytest -rs)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import odoo_test  # noqa: E402

# odoo-bin --test-tags /crm_lifecycle:TestLifecycleUi with no Chromium on PATH,
# copied as they are (long lines)
ODOO_SKIP_RUN = "".join(
    f"{line} \n"  # Odoo ends its lines with a space
    for line in (
        "2026-12-01 10:09:57,561 12298 INFO lc_lang odoo.addons.crm_lifecycle.tests.test_ui: Starting TestLifecycleUi.test_client_form_relationship ...",
        "2026-12-01 10:09:57,565 12298 INFO lc_lang odoo.addons.crm_lifecycle.tests.test_ui: skipped TestLifecycleUi.test_client_form_relationship : Chrome executable not found",
        "2026-12-01 10:09:57,565 12298 INFO lc_lang odoo.addons.crm_lifecycle.tests.test_ui.TestLifecycleUi.test_client_form_relationship: waiting for threads: []",
        "2026-12-01 10:09:57,609 12298 INFO lc_lang odoo.addons.crm_lifecycle.tests.test_ui: Starting TestLifecycleUi.test_settings ...",
        "2026-12-01 10:09:57,612 12298 INFO lc_lang odoo.addons.crm_lifecycle.tests.test_ui: skipped TestLifecycleUi.test_settings : Chrome executable not found",
        "2026-12-01 10:09:57,623 12298 INFO lc_lang odoo.tests.stats: crm_lifecycle: 12 tests 1.44s 415 queries",
        "2026-12-01 10:09:57,623 12298 INFO lc_lang odoo.tests.result: 0 failed, 0 error(s) of 10 tests when loading database 'lc_lang'",
    )
)

# a class whose setUpClass raised SkipTest: its tests never started
ODOO_CLASS_SKIP = (
    "2026-12-01 10:09:57,612 12298 INFO lc_lang odoo.addons.crm_lifecycle.tests."
    "test_ui: skipped setUpClass (odoo.addons.crm_lifecycle.tests.test_ui."
    "TestLifecycleUi) : Chrome executable not found \n"
)

PYTEST_RUN = """\
test_s.py:11: AssertionError
=========================== short test summary info ============================
SKIPPED [1] tests/test_xmlrpc.py:6: no server
==================== 1 failed, 5 passed, 1 skipped in 0.04s ====================
"""


def odoo_counts(log):
    counts = odoo_test.new_counts()
    results = [odoo_test.count_odoo_line(line, counts) for line in log.splitlines()]
    return odoo_test.finish_odoo_counts(counts), results


def test_odoo_skips_are_not_passed():
    counts, results = odoo_counts(ODOO_SKIP_RUN)
    assert results.count(True) == 1  # the result line
    # 10 tests ran, 2 of them skipped (the lines of 8 others are left out)
    assert (counts["passed"], counts["failed"], counts["skipped"]) == (8, 0, 2)
    assert counts["skipped_tests"] == [
        "odoo.addons.crm_lifecycle.tests.test_ui: "
        "TestLifecycleUi.test_client_form_relationship (Chrome executable not found)",
        "odoo.addons.crm_lifecycle.tests.test_ui: "
        "TestLifecycleUi.test_settings (Chrome executable not found)",
    ]


def test_odoo_class_skip_is_not_taken_from_the_run_tests():
    result = (
        "2026-12-01 10:09:57,623 12298 INFO lc_lang odoo.tests.result: "
        "0 failed, 0 error(s) of 4 tests when loading database 'lc_lang' \n"
    )
    counts, _results = odoo_counts(ODOO_CLASS_SKIP + result)
    assert (counts["passed"], counts["failed"], counts["skipped"]) == (4, 0, 1)


def test_pytest_skips():
    counts = odoo_test.count_pytest_output(PYTEST_RUN)
    assert (counts["passed"], counts["failed"], counts["skipped"]) == (5, 1, 1)
    assert counts["skipped_tests"] == ["tests/test_xmlrpc.py:6 (no server)"]


def test_summary_prints_skipped_and_fails_in_ci():
    odoo, _results = odoo_counts(ODOO_SKIP_RUN)
    pytest_counts = odoo_test.count_pytest_output(PYTEST_RUN.replace("1 failed, ", ""))
    lines, failed = odoo_test.summary(odoo, pytest_counts)
    assert lines[0] == "13 passed, 0 failed, 3 skipped"
    assert not failed  # on a developer machine: said, not failed
    lines, failed = odoo_test.summary(odoo, pytest_counts, ci=True)
    assert failed
    assert lines[1].startswith("[test] CI: 3 test(s) skipped")
    assert "TestLifecycleUi.test_settings" in "\n".join(lines)
    assert "tests/test_xmlrpc.py:6 (no server)" in "\n".join(lines)


def test_summary_without_skips():
    counts = odoo_test.count_pytest_output("==== 3 passed, 2 warnings in 1.00s ====")
    lines, failed = odoo_test.summary(odoo_test.new_counts(), counts, ci=True)
    assert lines == ["3 passed, 0 failed, 0 skipped"]
    assert not failed
