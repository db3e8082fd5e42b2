"""Test counts from JUnit XML or, when a run wrote none, from the summary lines test runners print (pure).

Each runner's summary format is quoted next to its parser with a link to where the runner prints it. Where a
runner prints several summaries (cargo one per crate and doc-test pass, maven one per module, pytest when a script
runs it twice) they are summed, and so are different runners in one output (``make test`` running pytest and jest).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET  # only for the ParseError type; parsing goes through xmlsafe
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from workspace.testing.xmlsafe import UnsafeXml, local_name, safe_xml_root

__all__ = [
    "TestCounts",
    "UnsafeXml",
    "counts_sum",
    "parse_junit_xml",
    "parse_output",
    "strip_ansi",
]


@dataclass(frozen=True, slots=True)
class TestCounts:
    __test__ = False  # not a pytest class

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    errors: int = 0
    total: int = 0
    source: str = ""


def _counts(source: str, *, passed: int = 0, failed: int = 0, skipped: int = 0, errors: int = 0) -> TestCounts:
    passed, failed, skipped, errors = (max(0, n) for n in (passed, failed, skipped, errors))
    return TestCounts(passed, failed, skipped, errors, passed + failed + skipped + errors, source)


def counts_sum(items: Iterable[TestCounts], *, source: str = "") -> TestCounts | None:
    """The sum of ``items`` (None when empty); the source names each distinct source once, in order."""
    listed = list(items)
    if not listed:
        return None
    sources = source or "+".join(dict.fromkeys(item.source for item in listed))
    return _counts(
        sources,
        passed=sum(item.passed for item in listed),
        failed=sum(item.failed for item in listed),
        skipped=sum(item.skipped for item in listed),
        errors=sum(item.errors for item in listed),
    )


# --- JUnit XML ------------------------------------------------------------------------------------------------
# The de facto schema (https://github.com/testmoapp/junitxml): <testsuites> or a single <testsuite>, suites may
# nest, each <testcase> has at most one of <failure>, <error>, <skipped>. Surefire's <flakyFailure>/<rerunFailure>
# are retries of a test that finally passed, so they are not failures.


def _int_attr(element: ET.Element, name: str) -> int:
    try:
        return max(0, int(float(element.get(name, "0") or 0)))
    except ValueError:
        return 0


def parse_junit_xml(data: bytes | str) -> TestCounts | None:
    """Counts from one JUnit XML document; None when it is not JUnit or not XML. Raises UnsafeXml for DTDs."""
    try:
        root = safe_xml_root(data)
    except ET.ParseError:
        return None
    if local_name(root.tag) not in ("testsuites", "testsuite"):
        return None
    cases = [element for element in root.iter() if local_name(element.tag) == "testcase"]
    if cases:
        passed = failed = skipped = errors = 0
        for case in cases:
            kinds = {local_name(child.tag) for child in case}
            if "error" in kinds:
                errors += 1
            elif "failure" in kinds:
                failed += 1
            elif "skipped" in kinds:
                skipped += 1
            else:
                passed += 1
        return _counts("junit", passed=passed, failed=failed, skipped=skipped, errors=errors)
    # No <testcase> elements: trust the innermost suites' attributes (outer ones repeat the same totals).
    suites = [element for element in root.iter() if local_name(element.tag) == "testsuite"]
    leaves = [suite for suite in suites if not any(local_name(child.tag) == "testsuite" for child in suite)]
    holders = leaves or [root]
    tests = sum(_int_attr(suite, "tests") for suite in holders)
    failed = sum(_int_attr(suite, "failures") for suite in holders)
    errors = sum(_int_attr(suite, "errors") for suite in holders)
    skipped = sum(_int_attr(suite, "skipped") + _int_attr(suite, "disabled") for suite in holders)
    return _counts("junit", passed=tests - failed - errors - skipped, failed=failed, skipped=skipped, errors=errors)


# --- summary lines --------------------------------------------------------------------------------------------

# CSI sequences (colours, cursor moves) and OSC sequences (hyperlinks, titles) as ECMA-48 defines them.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escapes, with carriage-return progress redraws reduced to their last state."""
    plain = _ANSI.sub("", text).replace("\r\n", "\n")
    return "\n".join(line.rsplit("\r", 1)[-1] for line in plain.split("\n"))


def _word_counts(body: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for number, word in re.findall(r"(\d+) ([a-z]+)", body):
        found[word] = found.get(word, 0) + int(number)
    return found


# pytest's terminal summary, e.g. "==== 5 passed, 1 failed, 2 skipped, 1 error in 0.12s ====" or, with -q,
# "5 passed, 3 deselected, 1 warning in 0.12s"; "no tests ran in 0.01s" when nothing was collected.
# https://github.com/pytest-dev/pytest/blob/main/src/_pytest/terminal.py (build_summary_stats_line)
_PYTEST = re.compile(
    r"^=*\s*(?P<body>(?:\d+ (?:passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?|rerun)"
    r"(?:, )?)+|no tests ran)\s+in [\d.]+s\b",
    re.MULTILINE,
)


def _pytest(text: str) -> list[TestCounts]:
    found = []
    for match in _PYTEST.finditer(text):
        words = _word_counts(match["body"])
        found.append(
            _counts(
                "pytest",
                passed=words.get("passed", 0) + words.get("xpassed", 0),
                failed=words.get("failed", 0),
                # xfail is reported as skipped in pytest's own JUnit output; we do the same.
                skipped=words.get("skipped", 0) + words.get("xfailed", 0),
                errors=words.get("error", 0) + words.get("errors", 0),
            )
        )
    return found


# Jest: "Tests:       1 failed, 2 skipped, 4 passed, 7 total" (https://jestjs.io/docs/cli; "todo" tests count as
# skipped). Vitest: " Tests  4 passed | 1 failed (5)" (https://vitest.dev/guide/reporters, default reporter).
_JEST = re.compile(r"^\s*Tests:\s+(?P<body>[^\n]*?\d+ total)", re.MULTILINE)
_VITEST = re.compile(r"^\s*Tests\s+(?P<body>\d+ [a-z]+(?:\s*\|\s*\d+ [a-z]+)*)\s*\((?P<total>\d+)\)", re.MULTILINE)


def _js(source: str, body: str) -> TestCounts:
    words = _word_counts(body)
    skipped = words.get("skipped", 0) + words.get("todo", 0) + words.get("pending", 0)
    return _counts(source, passed=words.get("passed", 0), failed=words.get("failed", 0), skipped=skipped)


def _jest(text: str) -> list[TestCounts]:
    return [_js("jest", match["body"]) for match in _JEST.finditer(text)]


def _vitest(text: str) -> list[TestCounts]:
    return [_js("vitest", match["body"]) for match in _VITEST.finditer(text)]


# go test (https://pkg.go.dev/cmd/go#hdr-Test_packages): "ok  \tpkg\t0.1s", "FAIL\tpkg\t0.2s",
# "FAIL\tpkg [build failed]", and per test "--- FAIL: TestX (0.00s)"; with -v also "--- PASS:" and "--- SKIP:".
# Subtests are indented under their parent and are not counted separately.
_GO_TEST = re.compile(r"^--- (PASS|FAIL|SKIP): \S+", re.MULTILINE)
_GO_OK = re.compile(r"^ok\s+\S+\s+(?:[\d.]+s|\(cached\))", re.MULTILINE)
_GO_PKG_FAIL = re.compile(r"^FAIL\s+\S+\s+(?:[\d.]+s|\[(?:build|setup) failed\])", re.MULTILINE)


def _go(text: str) -> list[TestCounts]:
    outcomes = [match[1] for match in _GO_TEST.finditer(text)]
    packages_ok = len(_GO_OK.findall(text))
    package_failures = _GO_PKG_FAIL.findall(text)
    broken = sum(1 for line in package_failures if "failed]" in line)
    if not outcomes and not packages_ok and not package_failures:
        return []
    if "PASS" in outcomes or "SKIP" in outcomes:
        return [
            _counts(
                "go test",
                passed=outcomes.count("PASS"),
                failed=outcomes.count("FAIL"),
                skipped=outcomes.count("SKIP"),
                errors=broken,
            )
        ]
    # Without -v a passing package prints only its "ok" line: count passing packages as the passed units.
    return [_counts("go test (packages)", passed=packages_ok, failed=outcomes.count("FAIL"), errors=broken)]


# cargo test (libtest): "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in
# 0.00s", once per test binary and once for doc-tests (https://doc.rust-lang.org/cargo/commands/cargo-test.html).
_CARGO = re.compile(
    r"^test result: (?:ok|FAILED)\. (\d+) passed; (\d+) failed; (\d+) ignored(?:; (\d+) measured)?", re.MULTILINE
)


def _cargo(text: str) -> list[TestCounts]:
    return [
        _counts("cargo test", passed=int(match[1]), failed=int(match[2]), skipped=int(match[3]))
        for match in _CARGO.finditer(text)
    ]


# mocha's spec reporter epilogue: "  3 passing (12ms)", "  2 pending", "  1 failing" (https://mochajs.org/#spec).
_MOCHA = re.compile(r"^\s*(\d+) (passing|failing|pending)(?:\s+\(\d+(?:\.\d+)?m?s\))?\s*$", re.MULTILINE)


def _mocha(text: str) -> list[TestCounts]:
    matches = _MOCHA.findall(text)
    if not any(word == "passing" for _, word in matches):
        return []  # mocha always prints "N passing", even "0 passing"
    totals = {"passing": 0, "failing": 0, "pending": 0}
    for number, word in matches:
        totals[word] += int(number)
    return [_counts("mocha", passed=totals["passing"], failed=totals["failing"], skipped=totals["pending"])]


# RSpec: "10 examples, 2 failures, 1 pending" and, when a file fails to load,
# "0 examples, 0 failures, 1 error occurred outside of examples" (https://rspec.info/features/3-12/rspec-core/).
_RSPEC = re.compile(
    r"^(\d+) examples?, (\d+) failures?(?:, (\d+) pending)?(?:, (\d+) errors? occurred outside of examples)?",
    re.MULTILINE,
)


def _rspec(text: str) -> list[TestCounts]:
    found = []
    for match in _RSPEC.finditer(text):
        examples, failures = int(match[1]), int(match[2])
        pending, outside = int(match[3] or 0), int(match[4] or 0)
        found.append(
            _counts("rspec", passed=examples - failures - pending, failed=failures, skipped=pending, errors=outside)
        )
    return found


# Maven Surefire prints "Tests run: 3, Failures: 0, Errors: 0, Skipped: 0, Time elapsed: 0.05 s - in a.FooTest"
# per class and a plain "Tests run: 5, Failures: 1, Errors: 0, Skipped: 1" total per module under "Results:"
# (https://maven.apache.org/surefire/maven-surefire-plugin/). Sum the module totals, else the per-class lines.
_MAVEN = re.compile(r"Tests run: (\d+), Failures: (\d+), Errors: (\d+), Skipped: (\d+)(?P<rest>[^\n]*)")


def _maven(text: str) -> list[TestCounts]:
    matches = list(_MAVEN.finditer(text))
    totals = [match for match in matches if "Time elapsed" not in match["rest"]]
    found = []
    for match in totals or matches:
        run, failures, errors, skipped = (int(match[n]) for n in range(1, 5))
        found.append(
            _counts(
                "maven surefire",
                passed=run - failures - errors - skipped,
                failed=failures,
                skipped=skipped,
                errors=errors,
            )
        )
    return found


# unittest: "Ran 5 tests in 0.001s", a blank line, then "OK", "OK (skipped=1)" or
# "FAILED (failures=1, errors=1, skipped=2, expected failures=1, unexpected successes=1)"
# (https://docs.python.org/3/library/unittest.html, TextTestRunner.run).
_UNITTEST = re.compile(r"^Ran (\d+) tests? in [\d.]+s\s*\n\s*\n?(OK|FAILED)(?: \(([^)\n]*)\))?", re.MULTILINE)


def _unittest(text: str) -> list[TestCounts]:
    found = []
    for match in _UNITTEST.finditer(text):
        ran = int(match[1])
        details = {key.strip(): int(value) for key, value in re.findall(r"([a-z ]+)=(\d+)", match[3] or "")}
        failed = details.get("failures", 0) + details.get("unexpected successes", 0)
        errors = details.get("errors", 0)
        skipped = details.get("skipped", 0) + details.get("expected failures", 0)
        found.append(
            _counts("unittest", passed=ran - failed - errors - skipped, failed=failed, skipped=skipped, errors=errors)
        )
    return found


_PARSERS: tuple[Callable[[str], list[TestCounts]], ...] = (
    _pytest,
    _unittest,
    _jest,
    _vitest,
    _go,
    _cargo,
    _mocha,
    _rspec,
    _maven,
)


def parse_output(output: str) -> TestCounts | None:
    """Counts from a run's console output, or None when no runner summary is recognisable."""
    text = strip_ansi(output)
    found = [counts for parser in _PARSERS for counts in parser(text)]
    return counts_sum(found)
