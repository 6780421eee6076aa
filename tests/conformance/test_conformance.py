"""Upstream's e2e suites (k8s.io/kubernetes v1.32.5) against the local cluster.

CONFORMANCE_SCOPE=ci (default) runs the representative subset; `full` the whole selection
(`make conformance`). JUnit files and the summary go to out/conformance/.
"""

import time

import pytest

from tests.conformance import suites
from tests.conformance.conftest import SUMMARIES

pytestmark = pytest.mark.conformance


def _record(result: suites.Result) -> None:
    SUMMARIES.append(result.summary())
    suites.OUT.mkdir(parents=True, exist_ok=True)
    with (suites.OUT / "summary.txt").open("a") as f:
        f.write(result.summary() + "\n")
    print(result.summary())


@pytest.mark.timeout(5400)
@pytest.mark.parametrize("suite", suites.suites(), ids=lambda s: s.name)
def test_upstream_ginkgo_suite(suite: suites.Suite, built: dict[str, str]) -> None:
    suites.wait_for_cluster()
    result = suites.run_ginkgo(suite)
    _record(result)
    assert result.passed, f"{suite.name}: no spec passed (see {result.junit})"
    assert not result.failed, f"{suite.name} failed: {result.failed}"


@pytest.mark.timeout(1800)
def test_upstream_pod_security_admission(built: dict[str, str]) -> None:
    suites.wait_for_cluster()
    result = suites.run_podsecurity()
    _record(result)
    assert result.passed, "podsecurity: no test passed"
    assert not result.failed, f"podsecurity failed: {result.failed}"


def test_run_cleans_up_and_leaves_project_namespaces(built: dict[str, str]) -> None:
    """Runs last: every namespace the suites made is gone, the project's are the same objects.
    (Only meaningful when nobody else redeploys the project meanwhile, as in CI's serial tiers.)"""
    deadline = time.monotonic() + 300
    started = built.pop("started")
    while (left := suites.e2e_namespaces(started)) and time.monotonic() < deadline:
        time.sleep(5)
    assert not left, f"namespaces left behind: {left}"
    assert suites.protected_namespace_uids() == built
