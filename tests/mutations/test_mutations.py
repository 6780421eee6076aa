"""Every end-to-end proof, shown to fail when the property it claims is broken.

For each entry of the catalogue: break the running platform, check the breakage landed, run
the proof in a pytest of its own, demand that it fails with the failure its claim predicts,
then restore the platform (checked object by object). A proof that still passes fails this
tier: it would have passed with its property broken.
"""

import os
import re
import subprocess
import sys

import pytest

from tests.ansible.conftest import changed_tasks, playbook, recap
from tests.mutations.catalogue import MUTATIONS, Mutation
from tests.mutations.conftest import VERDICTS
from tests.support import REPO

# CI runs the quick ones; `make prove-the-proofs` (MUTATIONS_SCOPE=full) every one. Either
# leaves out those whose proofs need more nodes than E2E_EXPECT_NODES (1 unless set): on a
# smaller cluster those proofs skip, and a skip would read as a proof that still passed.
SCOPE = os.environ.get("MUTATIONS_SCOPE", "ci")
NODES = int(os.environ.get("E2E_EXPECT_NODES") or 1)
SELECTED = [m for m in MUTATIONS if (SCOPE == "full" or m.ci) and m.nodes <= NODES]


def run_proofs(proofs: tuple[str, ...]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", *(f"tests/e2e/{p}" for p in proofs), "-q", "-rfE",
         "-p", "no:cacheprovider", "--tb=short"],
        cwd=REPO, capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip


def _failed(proof: str, output: str) -> bool:
    """pytest's short summary (-rfE) names each failed or erroring test, parameters included."""
    return re.search(rf"^(FAILED|ERROR) tests/e2e/{re.escape(proof)}\b", output, re.M) is not None


@pytest.mark.parametrize("mutation", SELECTED, ids=[m.name for m in SELECTED])
def test_the_proof_fails_when_its_property_is_broken(mutation: Mutation) -> None:
    names = ", ".join(p.split("::")[-1] for p in mutation.proofs)
    verdict, output = "could not be broken", ""
    try:
        with mutation.apply():
            verdict = "ran, but the platform was not restored"
            result = run_proofs(mutation.proofs)
            output = result.stdout + result.stderr
        if result.returncode == 0:
            verdict = "STILL PASSED"
        elif result.returncode != 1:
            verdict = f"did not run (pytest exit {result.returncode})"
        elif missed := [p for p in mutation.proofs if not _failed(p, output)]:
            verdict = f"failed, but {', '.join(missed)} passed"
        elif not re.search(mutation.fails_with, output):
            verdict = "failed, but not as the breakage predicts"
        else:
            verdict = "failed as it should"
    finally:
        VERDICTS.append((mutation.name, mutation.breakage, names, verdict))
    assert verdict == "failed as it should", f"{verdict}:\n{output[-6000:]}"


def test_the_platform_is_as_deployed_after_every_breakage() -> None:
    """Each breakage checked its own restoration; the deploy stage agrees: nothing to change."""
    result = playbook("playbooks/deploy.yml", "--diff", check=False)
    counts = recap(result.stdout)
    assert counts["failed"] == 0, result.stdout[-6000:]
    assert counts["changed"] == 0, (
        f"changed: {changed_tasks(result.stdout)}\n{result.stdout[-6000:]}"
    )
