"""Running a workspace's tests: summary and JUnit parsing (parse.py), coverage reports (coverage.py), the
sandboxed runner (runner.py), the service that records a TestRun (service.py) and its reads (selectors.py).

parse.py and coverage.py are pure (no Django) so they stay unit-testable; import the rest explicitly.
"""
