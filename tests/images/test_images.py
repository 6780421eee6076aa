"""The images, built for real under dockerd by the images stage, and run the way the cluster
runs them: non-root, read-only root filesystem, no capabilities."""

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.images.conftest import REPO, Leftovers, StageRun, docker, run_stage
from tests.support import SERVICES, http, wait_until

PORTS = {"invoice_app": 8081, "payment_provider": 8082}


def test_stage_builds_every_image_tagged_by_content_hash(stage: StageRun) -> None:
    assert set(stage.refs) == {*PORTS, "postgres"}
    assert set(stage.base_refs) == {"python", "python_runtime", "postgres"}
    for ref in [*stage.refs.values(), *stage.base_refs.values()]:
        name, tag = ref.rsplit(":", 1)
        assert tag != "latest"
        assert name.startswith("invoicing-platform/")
        assert docker("image", "inspect", "--format", "{{.Id}}", ref).startswith("sha256:")
    for ref in stage.refs.values():
        assert len(ref.rsplit(":", 1)[1]) == 16


@pytest.mark.parametrize("package", sorted(PORTS))
def test_image_runs_as_uid_10001_on_a_read_only_root_and_answers_healthz(
    stage: StageRun, leftovers: Leftovers, package: str
) -> None:
    ref = stage.refs[package]
    config = json.loads(docker("image", "inspect", "--format", "{{json .Config}}", ref))
    assert config["User"] == "10001:10001"
    assert config["Cmd"] == ["python3", "-m", package]

    name = f"images-test-{package}-{os.getpid()}"
    leftovers.containers.append(name)
    docker(
        "run", "--detach", "--name", name,
        "--user", "10001:10001",
        "--read-only",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        # The only writable place: SQLite's file, as an emptyDir would be in the cluster.
        "--tmpfs", "/tmp:rw,noexec,nosuid,size=16m",
        "--env", f"DATABASE_URL=sqlite:////tmp/{package}.db",
        # payment-provider refuses to start without a token unless told this is on purpose.
        "--env", "PAYMENT_PROVIDER_ALLOW_NO_TOKEN=true",
        "--publish", f"127.0.0.1::{PORTS[package]}",
        ref,
    )  # fmt: skip
    host_port = docker("port", name, f"{PORTS[package]}/tcp").splitlines()[0].rsplit(":", 1)[1]
    url = f"http://127.0.0.1:{host_port}"

    def healthy() -> bool:
        if docker("inspect", "--format", "{{.State.Running}}", name) != "true":
            raise AssertionError(f"{name} exited:\n{docker('logs', name)}")
        return http("GET", f"{url}/healthz", timeout=2).status == 200

    wait_until(healthy, 60, f"{package} /healthz on {url}", interval=0.3)
    # Distroless: no shell and no id(1) in the image, so Python tells.
    assert docker("exec", name, "python3", "-c", "import os; print(os.getuid())") == "10001"
    assert docker("diff", name) == ""  # nothing written to the image's filesystem

    # SIGTERM stops it cleanly, well within Kubernetes' grace period.
    started = time.monotonic()
    docker("stop", "--time", "20", name)
    assert time.monotonic() - started < 15
    assert docker("inspect", "--format", "{{.State.ExitCode}}", name) == "0"


def test_deploy_stage_finds_the_same_references_without_building(
    stage: StageRun, tmp_path: Path
) -> None:
    found = run_stage(tmp_path, playbook=REPO / "tests" / "images" / "refs-report.yml")
    assert found.refs == stage.refs
    assert found.base_refs == stage.base_refs


def test_postgres_image_serves_on_a_read_only_root_as_uid_999(
    stage: StageRun, leftovers: Leftovers
) -> None:
    name = f"images-test-postgres-{os.getpid()}"
    leftovers.containers.append(name)
    writable = "uid=999,gid=999,mode=0700"
    docker(
        "run", "--detach", "--name", name,
        "--read-only",
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",
        "--tmpfs", f"/var/lib/postgresql/data:{writable}",
        "--tmpfs", f"/var/run/postgresql:{writable}",
        "--tmpfs", "/tmp",
        "--env", "POSTGRES_PASSWORD=images-test",
        "--env", "POSTGRES_USER=invoices",
        "--env", "POSTGRES_DB=invoices",
        stage.refs["postgres"],
    )  # fmt: skip

    def accepting() -> bool:
        if docker("inspect", "--format", "{{.State.Running}}", name) != "true":
            raise AssertionError(f"{name} exited:\n{docker('logs', name)}")
        ready = docker("exec", name, "pg_isready", "-h", "127.0.0.1", "-U", "invoices", check=False)
        return "accepting connections" in ready

    wait_until(accepting, 60, "PostgreSQL accepting connections", interval=0.5)
    # dash is the image's only command besides PostgreSQL's, so it reads the UID itself.
    uid = 'while read -r k v _; do if [ "$k" = Uid: ]; then echo "$v"; fi; done </proc/self/status'
    assert docker("exec", name, "sh", "-c", uid) == "999"
    answer = docker(
        "exec", "--env", "PGPASSWORD=images-test", name,
        "psql", "-h", "127.0.0.1", "-U", "invoices", "-d", "invoices", "-Atc", "select 6 * 7",
    )  # fmt: skip
    assert answer == "42"


def test_rerun_with_no_change_builds_nothing(stage: StageRun, tmp_path: Path) -> None:
    rerun = run_stage(tmp_path, playbook=REPO / "playbooks" / "images.yml")
    assert rerun.changed == 0, rerun.output[-4000:]
    assert "changed: [localhost]" not in rerun.output
    print(f"no-change rerun of playbooks/images.yml: {rerun.seconds:.1f} s")


def _copy_context(tmp_path: Path) -> Path:
    context = tmp_path / "services"
    shutil.copytree(SERVICES, context, ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    return context


def test_tag_follows_the_content_of_the_build_context(
    stage: StageRun, tmp_path: Path, leftovers: Leftovers
) -> None:
    context = _copy_context(tmp_path)

    def stage_on_copy() -> StageRun:
        extra = ("--tags", "service_image", "-e", f"service_image_context={context}")
        return run_stage(tmp_path, *extra)

    copied = stage_on_copy()
    assert copied.refs == stage.refs  # same content, same tags, nothing rebuilt
    assert copied.changed == 0

    # What the image never contains changes nothing.
    (context / "invoice_app" / "__pycache__").mkdir(exist_ok=True)
    (context / "invoice_app" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"stale")
    (context / "invoice-app.db").write_bytes(b"local data")
    assert stage_on_copy().refs == stage.refs

    # A source change gives that service a new tag, and an image that holds the change.
    marker = "# changed by test_tag_follows_the_content_of_the_build_context"
    with (context / "invoice_app" / "__init__.py").open("a") as source:
        source.write(marker + "\n")
    changed = stage_on_copy()
    leftovers.images.append(changed.refs["invoice_app"])
    assert changed.refs["invoice_app"] != stage.refs["invoice_app"]
    assert changed.refs["payment_provider"] == stage.refs["payment_provider"]
    assert changed.changed > 0
    last_line = "print(open('/app/invoice_app/__init__.py').read().splitlines()[-1])"
    shipped = docker(
        "run", "--rm", "--read-only", "--entrypoint", "python3",
        changed.refs["invoice_app"], "-c", last_line,
    )  # fmt: skip
    assert shipped == marker
