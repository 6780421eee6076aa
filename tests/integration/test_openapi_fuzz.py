"""Property-based tests from each service's OpenAPI document: schemathesis generates valid and
invalid requests, and every answer must match the document and never be a 5xx."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.support import SERVICES, PostgresServer, ServiceProcess

INVOICE_APP = schemathesis.openapi.from_path(SERVICES / "invoice_app" / "openapi.yaml")
PAYMENT_PROVIDER = schemathesis.openapi.from_path(SERVICES / "payment_provider" / "openapi.yaml")
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)


@pytest.fixture(scope="module")
def running(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """One provider (no token and no declines, so that every valid charge succeeds) and one
    invoice-app."""
    logs = tmp_path_factory.mktemp("fuzz")
    provider = ServiceProcess(
        "payment_provider",
        {
            "DATABASE_URL": postgres.create_database("fuzz_provider"),
            "FAILURE_RATE": "0",
            "PAYMENT_PROVIDER_ALLOW_NO_TOKEN": "true",
        },
        logs / "payment_provider.log",
    ).start()
    app = ServiceProcess(
        "invoice_app",
        {
            "DATABASE_URL": postgres.create_database("fuzz_invoices"),
            "PAYMENT_PROVIDER_URL": provider.url,
        },
        logs / "invoice_app.log",
    ).start()
    yield {"invoice_app": app, "payment_provider": provider, "logs": logs}
    for service in (app, provider):
        service.kill()


@INVOICE_APP.parametrize()
@FUZZ
def test_invoice_app_matches_its_openapi_and_never_fails(case, running) -> None:
    case.call_and_validate(base_url=running["invoice_app"].url)


@PAYMENT_PROVIDER.parametrize()
@FUZZ
def test_payment_provider_matches_its_openapi_and_never_fails(case, running) -> None:
    case.call_and_validate(base_url=running["payment_provider"].url)


def test_fuzzing_left_no_tracebacks_in_the_logs(running: dict) -> None:
    for log in Path(running["logs"]).glob("*.log"):
        text = log.read_text()
        assert "Traceback" not in text, log
        assert '"level": "ERROR"' not in text, log
