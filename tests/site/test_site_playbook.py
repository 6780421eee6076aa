"""The main job itself: `ansible-playbook site.yml` takes this machine to a verified, running
system, and a second run changes nothing."""

import re
import time

from tests.ansible.conftest import playbook

RECAP = re.compile(
    r"^localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M
)


def run_site() -> tuple[float, dict[str, int], str]:
    started = time.monotonic()
    result = playbook("site.yml")
    elapsed = time.monotonic() - started
    ok, changed, unreachable, failed = map(int, RECAP.findall(result.stdout)[-1])
    return elapsed, {"ok": ok, "changed": changed, "failed": failed + unreachable}, result.stdout


def test_site_yml_converges_verifies_and_then_changes_nothing() -> None:
    first_time, first, first_output = run_site()
    assert first["failed"] == 0
    assert re.search(r"All \d+ invoices are paid", first_output), "verify did not pass"

    second_time, second, second_output = run_site()
    print(
        f"site.yml: first run {first_time:.0f}s ({first['changed']} changed), "
        f"second run {second_time:.0f}s ({second['ok']} ok, {second['changed']} changed)"
    )
    changed_tasks = re.findall(r"^changed: .*$|^TASK \[(.*)\]", second_output, re.M)
    assert second["changed"] == 0, [t for t in changed_tasks if t]
    assert second["failed"] == 0
