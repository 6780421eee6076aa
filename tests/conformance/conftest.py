"""The conformance tier: builds once per session, and prints one summary line per suite."""

import time

import pytest

from tests.conformance import suites

SUMMARIES: list[str] = []


@pytest.fixture(scope="session")
def built() -> dict[str, str]:
    """Builds (cached) and pushes the images; returns the project's namespaces' uids as they
    were before any suite ran."""
    suites.wait_for_cluster()
    before = suites.protected_namespace_uids()
    before["started"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    suites.build()
    return before


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARIES:
        terminalreporter.section(f"upstream e2e suites ({suites.SCOPE} scope)")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
