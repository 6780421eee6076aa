"""Helpers the test tiers share: ports, waiting on HTTP, and real processes cleaned up by pid."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SERVICES = REPO / "services"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def http(
    method: str,
    url: str,
    body: bytes | str | dict | list | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> Reply:
    """One HTTP request to a local test server; 4xx and 5xx come back as replies, not errors."""
    data = json.dumps(body).encode() if isinstance(body, dict | list) else body
    if isinstance(data, str):
        data = data.encode()
    if urllib.parse.urlsplit(url).hostname != "127.0.0.1":
        raise ValueError(f"tests talk to 127.0.0.1 only, not {url}")
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        # Loopback only (checked above), where a test Ingress serves a self-signed certificate.
        context = ssl._create_unverified_context() if url.startswith("https:") else None  # noqa: S323
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, got = error.read(), error.code, dict(error.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(status, parsed, got)


def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class ServiceProcess:
    """A service started as `python -m <module>`, the way its container starts it."""

    module: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    def start(self, wait_ready: bool = True) -> "ServiceProcess":
        env = {
            **os.environ,
            "PYTHONPATH": str(SERVICES),
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "METRICS_PORT": str(self.metrics_port),
            "DATABASE_WAIT_SECONDS": "10",
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module], env=env, stdout=log, stderr=log
            )
        if wait_ready:
            wait_until(self.ready, 30, f"{self.module} on {self.url} (log: {self.log_path})")
        return self

    def ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.module} exited; see {self.log_path}")
        return http("GET", f"{self.url}/readyz", timeout=2).status == 200

    def terminate(self, timeout: float = 30) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class PostgresServer:
    port: int
    bin_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        self.sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sql(self, statement: str) -> str:
        """Runs one statement as the superuser and returns psql's unaligned output."""
        return subprocess.run(
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
                statement,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout


def _postgres_bin_dir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), reverse=True)
    if candidates:
        return candidates[0].parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        return Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
    raise RuntimeError("PostgreSQL server not found; `make setup` installs Debian's postgresql")


@contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL from the distribution's packages on 127.0.0.1, removed afterwards."""
    bin_dir = _postgres_bin_dir()
    # Not under pytest's tmp dir: that is private to root, and PostgreSQL refuses to run as
    # root, so a root run hands the data directory to the `postgres` user.
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
        yield PostgresServer(port, bin_dir)
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(root, ignore_errors=True)
