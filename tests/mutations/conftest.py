"""The mutation tier: each proof of tests/e2e run against the platform with its property
broken on purpose. Needs the deployed platform (`make up`, or the site tier before it)."""

import pytest

from tests.e2e.conftest import deployed  # noqa: F401 (the platform must answer first)

# (mutation, breakage, proofs, verdict), in the order they ran; printed at the end.
VERDICTS: list[tuple[str, str, str, str]] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not VERDICTS:
        return
    write = terminalreporter.write_line
    write("")
    write("| proof | breakage | verdict |")
    write("| --- | --- | --- |")
    for _, breakage, proofs, verdict in VERDICTS:
        write(f"| {proofs} | {breakage} | {verdict} |")
