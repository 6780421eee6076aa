"""Both services as real waitress processes on 127.0.0.1, against a real PostgreSQL."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import ServiceProcess

Starter = Callable[..., ServiceProcess]

TOKEN = "integration-token"


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
