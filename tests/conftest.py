"""Fixtures shared by every tier."""

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port, wait_until


@dataclass
class PostgresServer:
    port: int
    bin_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        subprocess.run(
            [
                self.bin_dir / "psql",
                "-qAt",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
        )
        return self.url(name)


def _postgres_bin_dir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if candidates:
        return candidates[0].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        return Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    raise RuntimeError("PostgreSQL server not found; `make setup` installs Debian's postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL from the distribution's packages, private to this test session."""
    bin_dir = _postgres_bin_dir()
    # Not under pytest's tmp dir: that is private to root, and PostgreSQL refuses to run as
    # root, so a root test run hands the data directory to the `postgres` user.
    root = Path(tempfile.mkdtemp(prefix="invoicing-test-postgres-"))
    data, log = root / "data", root / "postgres.log"
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(root, user)
    subprocess.run(
        [bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
        user=user,
    )
    port = free_port()
    with log.open("ab") as log_file:
        server = subprocess.Popen(
            [
                bin_dir / "postgres",
                "-D",
                data,
                "-p",
                str(port),
                "-h",
                "127.0.0.1",
                "-k",
                root,
                "-c",
                "fsync=off",
                "-c",
                "max_connections=200",
            ],
            stdout=log_file,
            stderr=log_file,
            user=user,
        )
    pg = PostgresServer(port, bin_dir)
    try:
        wait_until(
            lambda: (
                subprocess.run(
                    [bin_dir / "pg_isready", "-h", "127.0.0.1", "-p", str(port)],
                    capture_output=True,
                ).returncode
                == 0
            ),
            30,
            f"PostgreSQL on port {port} (log: {log})",
        )
        yield pg
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"t_{int(time.time() * 1000) % 10**9}_{request.node.name[:30]}".lower()
    return postgres.create_database("".join(c if c.isalnum() else "_" for c in name))
