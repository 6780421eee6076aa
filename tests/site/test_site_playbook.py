"""The main job itself: `ansible-playbook site.yml` takes this machine to a verified, running
system, and a second run changes nothing."""

import re
import time

from tests.ansible.conftest import changed_tasks, playbook, recap


def run_site() -> tuple[float, dict[str, int], str]:
    started = time.monotonic()
    result = playbook("site.yml")
    elapsed = time.monotonic() - started
    return elapsed, recap(result.stdout), result.stdout


def test_site_yml_converges_verifies_and_then_changes_nothing() -> None:
    first_time, first, first_output = run_site()
    assert first["failed"] == 0
    assert re.search(r"All \d+ invoices are paid", first_output), "verify did not pass"

    second_time, second, second_output = run_site()
    print(
        f"site.yml: first run {first_time:.0f}s ({first['changed']} changed), "
        f"second run {second_time:.0f}s ({second['ok']} ok, {second['changed']} changed)"
    )
    assert second["changed"] == 0, changed_tasks(second_output)
    assert second["failed"] == 0
