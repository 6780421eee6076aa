"""The images tier: the real images stage (playbooks/images.yml) under the real dockerd.

The session builds once, through Ansible as users do, and every test reads what it published.
Containers are removed by the names the tests gave them; images built from temporary contexts
are removed by reference.
"""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import REPO

HERE = Path(__file__).resolve().parent
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(HERE):
            item.add_marker(pytest.mark.images)


@dataclass
class StageRun:
    """One ansible-playbook run of the images stage, with what it published."""

    refs: dict[str, str]
    base_refs: dict[str, str]
    output: str
    seconds: float

    @property
    def changed(self) -> int:
        recap = [line for line in self.output.splitlines() if line.startswith("localhost")]
        return int(recap[-1].split("changed=")[1].split()[0])


def run_stage(tmp_dir: Path, *extra: str, playbook: Path = HERE / "report.yml") -> StageRun:
    report = tmp_dir / f"report-{time.monotonic_ns()}.json"
    started = time.monotonic()
    result = subprocess.run(
        [
            ANSIBLE_PLAYBOOK,
            playbook,
            "-e",
            "service_image_provider=none",
            "-e",
            f"images_report_file={report}",
            *extra,
        ],
        cwd=REPO,
        env={
            **os.environ,
            "ANSIBLE_NOCOLOR": "1",
            "PATH": f"{ANSIBLE_PLAYBOOK.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    published = json.loads(report.read_text()) if report.exists() else {}
    return StageRun(
        refs=published.get("service_image_refs", {}),
        base_refs=published.get("python_base_image_refs", {}),
        output=result.stdout,
        seconds=seconds,
    )


@pytest.fixture(scope="session")
def stage(tmp_path_factory: pytest.TempPathFactory) -> StageRun:
    """The images stage run once for the session: engine, base image, both service images."""
    return run_stage(tmp_path_factory.mktemp("images"))


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    result = subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


@dataclass
class Leftovers:
    """What a test creates in Docker: containers by name, images by reference."""

    containers: list[str]
    images: list[str]


@pytest.fixture
def leftovers() -> Iterator[Leftovers]:
    """Everything a test records here is removed when it ends, containers first."""
    made = Leftovers(containers=[], images=[])
    yield made
    for name in made.containers:
        docker("rm", "--force", name, check=False)
    for ref in made.images:
        docker("image", "rm", ref, check=False)
