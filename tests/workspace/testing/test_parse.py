from __future__ import annotations

import pytest

from workspace.testing.parse import TestCounts, UnsafeXml, counts_sum, parse_junit_xml, parse_output, strip_ansi


def counts(result: TestCounts | None) -> tuple[int, int, int, int, int]:
    assert result is not None
    return (result.passed, result.failed, result.skipped, result.errors, result.total)


# --- JUnit ------------------------------------------------------------------------------------------------------

PYTEST_JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">
<testsuite name="pytest" errors="1" failures="1" skipped="1" tests="5" time="0.05"
 timestamp="2025-01-01T00:00:00" hostname="h">
<testcase classname="tests.test_a" name="test_ok" time="0.001" />
<testcase classname="tests.test_a" name="test_ok2" time="0.001" />
<testcase classname="tests.test_a" name="test_bad" time="0.001"><failure message="assert 1 == 2">E assert</failure>
</testcase>
<testcase classname="tests.test_a" name="test_skip" time="0.0"><skipped type="pytest.skip" message="no" /></testcase>
<testcase classname="tests.test_a" name="test_err" time="0.0"><error message="fixture failed">boom</error></testcase>
</testsuite></testsuites>"""


def test_junit_pytest_document() -> None:
    result = parse_junit_xml(PYTEST_JUNIT.encode())
    assert counts(result) == (2, 1, 1, 1, 5)
    assert result is not None and result.source == "junit"


def test_junit_multiple_suites_and_nested_suites() -> None:
    document = """<testsuites tests="6" failures="2">
      <testsuite name="a" tests="3" failures="1">
        <testcase name="a1"/><testcase name="a2"/><testcase name="a3"><failure/></testcase>
      </testsuite>
      <testsuite name="outer">
        <testsuite name="b" tests="3" failures="1">
          <testcase name="b1"/><testcase name="b2"><failure/></testcase>
          <testcase name="b3"><skipped/></testcase>
        </testsuite>
      </testsuite>
    </testsuites>"""
    assert counts(parse_junit_xml(document)) == (3, 2, 1, 0, 6)


def test_junit_without_testcases_uses_innermost_suite_attributes() -> None:
    document = """<testsuites tests="9" failures="9"><testsuite tests="4" failures="1" errors="1" skipped="1"/>
    <testsuite tests="3" failures="0" errors="0" disabled="1"/></testsuites>"""
    assert counts(parse_junit_xml(document)) == (3, 1, 2, 1, 7)


def test_junit_surefire_flaky_rerun_is_not_a_failure() -> None:
    document = """<testsuite xmlns="urn:x" name="a.FooTest" tests="2" failures="0">
      <testcase name="t1"><flakyFailure message="first try"/></testcase>
      <testcase name="t2"/>
    </testsuite>"""
    assert counts(parse_junit_xml(document)) == (2, 0, 0, 0, 2)


def test_junit_utf16_document_is_parsed() -> None:
    document = '<?xml version="1.0" encoding="UTF-16"?><testsuite><testcase name="t"/></testsuite>'
    assert counts(parse_junit_xml(document.encode("utf-16"))) == (1, 0, 0, 0, 1)


@pytest.mark.parametrize(
    "document",
    [
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
        "<testsuite><testcase name='&lol2;'/></testsuite>",
        '<!DOCTYPE testsuite SYSTEM "file:///etc/passwd"><testsuite/>',
        '<!doctype testsuite [<!entity x SYSTEM "file:///etc/passwd">]><testsuite name="&x;"/>',
    ],
)
def test_junit_with_dtd_or_entities_is_refused(document: str) -> None:
    with pytest.raises(UnsafeXml):
        parse_junit_xml(document)


def test_junit_entity_hidden_in_utf16_is_refused() -> None:
    document = '<!DOCTYPE x [<!ENTITY a "b">]><testsuite name="&a;"/>'
    with pytest.raises(UnsafeXml):
        parse_junit_xml(b"\xff\xfe" + document.encode("utf-16-le"))


@pytest.mark.parametrize("document", ["<coverage line-rate='1'/>", "not xml at all <", ""])
def test_junit_other_documents_are_none(document: str) -> None:
    assert parse_junit_xml(document) is None


# --- console summaries ------------------------------------------------------------------------------------------


def test_strip_ansi_removes_colours_and_carriage_return_redraws() -> None:
    assert strip_ansi("\x1b[32m5 passed\x1b[0m\r\n") == "5 passed\n"
    assert strip_ansi("progress 10%\rprogress 100%\nend") == "progress 100%\nend"
    assert strip_ansi("\x1b]8;;https://x\x07link\x1b]8;;\x07") == "link"


def test_pytest_full_summary_with_colours() -> None:
    output = (
        "tests/test_a.py ..F.s\n"
        "=========================== short test summary info ============================\n"
        "FAILED tests/test_a.py::test_bad - assert 1 == 2\n"
        "\x1b[31m=== \x1b[31m\x1b[1m1 failed\x1b[0m, \x1b[32m5 passed\x1b[0m, \x1b[33m2 skipped\x1b[0m, "
        "\x1b[31m1 error\x1b[0m\x1b[31m in 0.12s\x1b[0m\x1b[31m ===\x1b[0m\n"
    )
    result = parse_output(output)
    assert counts(result) == (5, 1, 2, 1, 9)
    assert result is not None and result.source == "pytest"


def test_pytest_quiet_with_xfail_xpass_deselected_and_warnings() -> None:
    output = "....xX\n4 passed, 1 xfailed, 1 xpassed, 3 deselected, 2 warnings in 1.50s (0:00:01)\n"
    assert counts(parse_output(output)) == (5, 0, 1, 0, 6)


def test_pytest_errors_plural_and_no_tests_ran() -> None:
    assert counts(parse_output("=== 2 errors in 0.30s ===")) == (0, 0, 0, 2, 2)
    assert counts(parse_output("no tests ran in 0.01s")) == (0, 0, 0, 0, 0)


def test_pytest_run_twice_is_summed() -> None:
    output = "=== 3 passed in 0.1s ===\nsecond package\n=== 1 failed, 1 passed in 0.2s ===\n"
    assert counts(parse_output(output)) == (4, 1, 0, 0, 5)


def test_jest_summary() -> None:
    output = (
        "FAIL src/sum.test.js\n  ● sum › adds\n\n"  # noqa: RUF001 - jest prints this
        "Test Suites: 1 failed, 1 passed, 2 total\n"
        "Tests:       1 failed, 1 skipped, 1 todo, 4 passed, 7 total\n"
        "Snapshots:   0 total\nTime:        1.2 s\nRan all test suites.\n"
    )
    result = parse_output(output)
    assert counts(result) == (4, 1, 2, 0, 7)
    assert result is not None and result.source == "jest"


def test_vitest_summary_with_colours() -> None:
    output = (
        " \x1b[31m❯\x1b[39m src/a.test.ts  (5 tests | 1 failed) 12ms\n\n"  # noqa: RUF001 - vitest prints this
        "\x1b[2m Test Files \x1b[22m \x1b[1m\x1b[31m1 failed\x1b[39m\x1b[22m\x1b[90m (1)\x1b[39m\n"
        "\x1b[2m      Tests \x1b[22m \x1b[1m\x1b[32m4 passed\x1b[39m\x1b[22m\x1b[2m | \x1b[22m"
        "\x1b[1m\x1b[31m1 failed\x1b[39m\x1b[22m\x1b[90m (5)\x1b[39m\n"
        "\x1b[2m   Start at \x1b[22m 10:00:00\n"
    )
    result = parse_output(output)
    assert counts(result) == (4, 1, 0, 0, 5)
    assert result is not None and result.source == "vitest"


def test_go_test_verbose_counts_top_level_tests() -> None:
    output = (
        "=== RUN   TestAdd\n--- PASS: TestAdd (0.00s)\n=== RUN   TestSub\n"
        "    --- PASS: TestSub/small (0.00s)\n    --- FAIL: TestSub/big (0.00s)\n--- FAIL: TestSub (0.00s)\n"
        "--- SKIP: TestSlow (0.00s)\n    calc_test.go:30: slow\nFAIL\nFAIL\texample.com/calc\t0.004s\n"
        "=== RUN   TestOther\n--- PASS: TestOther (0.00s)\nPASS\nok  \texample.com/other\t0.002s\n"
    )
    result = parse_output(output)
    assert counts(result) == (2, 1, 1, 0, 4)
    assert result is not None and result.source == "go test"


def test_go_test_without_verbose_counts_packages_and_build_failures() -> None:
    output = (
        "ok  \texample.com/a\t0.010s\nok  \texample.com/b\t(cached)\n"
        "--- FAIL: TestX (0.00s)\n    x_test.go:9: want 2\nFAIL\nFAIL\texample.com/c\t0.003s\n"
        "FAIL\texample.com/d [build failed]\n?   \texample.com/e\t[no test files]\n"
    )
    result = parse_output(output)
    assert counts(result) == (2, 1, 0, 1, 4)
    assert result is not None and result.source == "go test (packages)"


def test_cargo_test_sums_every_test_binary() -> None:
    output = (
        "running 3 tests\ntest a ... ok\ntest b ... ignored\ntest c ... ok\n\n"
        "test result: ok. 2 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s\n\n"
        "running 2 tests\ntest d ... FAILED\n\n"
        "test result: FAILED. 1 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.01s\n"
        "   Doc-tests calc\n\ntest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    )
    assert counts(parse_output(output)) == (4, 1, 1, 0, 6)


def test_mocha_epilogue() -> None:
    output = "  Array\n    ✓ works\n\n\n  3 passing (12ms)\n  2 pending\n  1 failing\n\n  1) Array fails:\n"
    result = parse_output(output)
    assert counts(result) == (3, 1, 2, 0, 6)
    assert result is not None and result.source == "mocha"


def test_rspec_summary_and_errors_outside_examples() -> None:
    output = "..F*\n\nFinished in 0.01 seconds (files took 0.1 seconds to load)\n10 examples, 2 failures, 1 pending\n"
    assert counts(parse_output(output)) == (7, 2, 1, 0, 10)
    broken = "0 examples, 0 failures, 1 error occurred outside of examples\n"
    assert counts(parse_output(broken)) == (0, 0, 0, 1, 1)


def test_maven_sums_module_totals_not_per_class_lines() -> None:
    output = (
        "[INFO] Tests run: 3, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.05 s - in a.FooTest\n"
        "[INFO] Tests run: 2, Failures: 0, Errors: 0, Skipped: 1, Time elapsed: 0.01 s - in a.BarTest\n"
        "[INFO] Results:\n[ERROR] Tests run: 5, Failures: 1, Errors: 0, Skipped: 1\n"
        "[INFO] Tests run: 4, Failures: 0, Errors: 1, Skipped: 0, Time elapsed: 0.02 s - in b.BazTest\n"
        "[INFO] Results:\n[ERROR] Tests run: 4, Failures: 0, Errors: 1, Skipped: 0\n"
    )
    assert counts(parse_output(output)) == (6, 1, 1, 1, 9)


def test_maven_per_class_lines_only() -> None:
    output = "Tests run: 3, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.05 s <<< FAILURE! - in a.FooTest\n"
    assert counts(parse_output(output)) == (2, 1, 0, 0, 3)


def test_unittest_ok_and_failed() -> None:
    ok = "...s\n" + "-" * 70 + "\nRan 4 tests in 0.001s\n\nOK (skipped=1)\n"
    assert counts(parse_output(ok)) == (3, 0, 1, 0, 4)
    failed = (
        "======================================================================\nFAIL: test_x (t.T.test_x)\n"
        "----------------------------------------------------------------------\n"
        "Ran 5 tests in 0.002s\n\nFAILED (failures=1, errors=1, expected failures=1)\n"
    )
    result = parse_output(failed)
    assert counts(result) == (2, 1, 1, 1, 5)
    assert result is not None and result.source == "unittest"


def test_different_runners_in_one_output_are_summed() -> None:
    output = "=== 3 passed in 0.1s ===\nTests:       1 failed, 2 passed, 3 total\n"
    result = parse_output(output)
    assert counts(result) == (5, 1, 0, 0, 6)
    assert result is not None and result.source == "pytest+jest"


@pytest.mark.parametrize(
    "output",
    ["", "compiling...\nerror: could not find Cargo.toml\n", "Traceback (most recent call last):\nImportError: x\n"],
)
def test_unrecognised_output_is_none(output: str) -> None:
    assert parse_output(output) is None


def test_counts_sum_of_nothing_is_none() -> None:
    assert counts_sum([]) is None
