"""Both services as real waitress processes on 127.0.0.1, against a real PostgreSQL."""

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import SERVICES, ServiceProcess, http

Starter = Callable[..., ServiceProcess]

TOKEN = "integration-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def refused_start_log(log: Path, module: str, env: dict[str, str]) -> str:
    """Starts `module` with `env` expecting it to refuse: it must exit 2 on its own. Returns
    what it logged. Killed by pid afterwards, should it have started after all."""
    service = ServiceProcess(module, env, log)
    service.start(wait_ready=False)
    assert service.process is not None
    try:
        assert service.process.wait(30) == 2
    finally:
        service.kill()
    return log.read_text()


def provider_summary(provider: ServiceProcess) -> dict:
    """The provider's totals: charged, declined, and any payment id charged twice."""
    return http("GET", f"{provider.url}/payments/summary", headers=AUTH).body


def seed(database_url: str, count: int, prefix: str | None = None) -> None:
    """Adds `count` pending invoices through the CLI, as `kubectl exec` does on the cluster."""
    subprocess.run(
        [sys.executable, "-m", "invoice_app", "seed", str(count)]
        + (["--prefix", prefix] if prefix else []),
        env={"PYTHONPATH": str(SERVICES), "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"},
        check=True,
    )


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    """Starts a service; every process started is stopped, by pid, when the test ends."""
    started: list[ServiceProcess] = []

    def starter(module: str, wait_ready: bool = True, **env: str) -> ServiceProcess:
        log = tmp_path / f"{module}-{len(started)}.log"
        service = ServiceProcess(module, {k.upper(): v for k, v in env.items()}, log)
        started.append(service)
        return service.start(wait_ready=wait_ready)

    yield starter
    for service in started:
        service.kill()


@pytest.fixture
def provider_db(postgres, request: pytest.FixtureRequest) -> str:
    return postgres.create_database(f"pp_{abs(hash(request.node.nodeid)) % 10**9}")


@pytest.fixture
def provider(start: Starter, provider_db: str) -> ServiceProcess:
    return start("payment_provider", database_url=provider_db, payment_provider_token=TOKEN)


@pytest.fixture
def invoice_app(start: Starter, database_url: str, provider: ServiceProcess) -> ServiceProcess:
    return start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=provider.url,
        payment_provider_token=TOKEN,
        payment_backoff_seconds="0.05",
        payment_backoff_max_seconds="0.2",
    )
