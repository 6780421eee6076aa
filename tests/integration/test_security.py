"""Security that fails closed: the provider will not run open by accident, every ledger read
needs its token, paying needs invoice-app's own token when one is set, and no secret or
internal address reaches a log or a public answer."""

from pathlib import Path

import pytest

from tests.integration.conftest import TOKEN, Starter, provider_summary, refused_start_log
from tests.support import ServiceProcess, http

API_TOKEN = "invoice-app-api-token"


def test_provider_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    output = refused_start_log(
        tmp_path / "provider.log", "payment_provider", {"PAYMENT_PROVIDER_TOKEN": ""}
    )
    assert "PAYMENT_PROVIDER_TOKEN is empty" in output


def test_provider_opt_out_runs_open_and_says_so_loudly(start: Starter, provider_db: str) -> None:
    provider = start(
        "payment_provider", database_url=provider_db, payment_provider_allow_no_token="true"
    )
    charge = {"id": "O1", "value": 1, "currency": "EUR"}
    assert http("POST", f"{provider.url}/payments/pay", charge).status == 200
    warnings = [line for line in provider.log_path.read_text().splitlines() if '"WARNING"' in line]
    assert any("PAYMENT_PROVIDER_ALLOW_NO_TOKEN=true" in line for line in warnings)


@pytest.mark.parametrize("path", ["/payments", "/payments/summary", "/payments?id=I1"])
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Basic {TOKEN}"])
def test_ledger_reads_need_the_token(
    provider: ServiceProcess, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    reply = http("GET", f"{provider.url}{path}", headers=headers)
    assert reply.status == 401
    assert reply.body["error"] == "Missing or invalid bearer token"
    ok = http("GET", f"{provider.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200


@pytest.fixture
def guarded_app(start: Starter, database_url: str, provider: ServiceProcess) -> ServiceProcess:
    """invoice-app as prod configures it: its pay routes need INVOICE_APP_API_TOKEN."""
    return start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=provider.url,
        payment_provider_token=TOKEN,
        invoice_app_api_token=API_TOKEN,
    )


@pytest.mark.parametrize(
    "path", ["/invoices/pay", "/rest/v1/invoices/pay", "/REST/v1/Invoices/Pay/"]
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong", f"Bearer {TOKEN}", API_TOKEN])
def test_pay_without_the_api_token_is_401_and_charges_nothing(
    guarded_app: ServiceProcess, provider: ServiceProcess, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    reply = http("POST", f"{guarded_app.url}{path}", headers=headers)
    assert reply.status == 401
    assert reply.body == {"error": "Missing or invalid bearer token"}
    assert provider_summary(provider)["charged"] == 0
    assert not any(i["IsPaid"] for i in http("GET", f"{guarded_app.url}/invoices").body)


def test_pay_with_the_api_token_pays_and_reads_stay_open(guarded_app: ServiceProcess) -> None:
    reply = http(
        "POST", f"{guarded_app.url}/invoices/pay", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert reply.status == 200
    assert reply.body["paidCount"] == 3
    assert http("GET", f"{guarded_app.url}/invoices").status == 200
    assert http("GET", f"{guarded_app.url}/rest/v1/invoices").status == 200


def test_pay_reports_never_show_the_providers_internal_address(
    start: Starter, database_url: str
) -> None:
    unreachable = ServiceProcess("payment_provider", {}, Path("/dev/null"))  # never started
    app = start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=unreachable.url,
        payment_max_retries="0",
    )
    reply = http("POST", f"{app.url}/invoices/pay")
    assert reply.status == 200
    assert reply.body["unpaid"][0]["Reason"] == "payment provider unreachable (connection failed)"
    assert str(unreachable.port) not in str(reply.body)
    assert "127.0.0.1" not in str(reply.body)


def test_no_secret_reaches_the_logs(start: Starter, postgres, database_url: str) -> None:
    password_url = database_url.replace("postgres@", "postgres:s3cret-pw@")
    app = start(
        "invoice_app",
        database_url=password_url,
        payment_provider_token="provider-s3cret",
        invoice_app_api_token="api-s3cret",
        log_level="DEBUG",
    )
    http("POST", f"{app.url}/invoices/pay", headers={"Authorization": "Bearer api-s3cret"})
    http("POST", f"{app.url}/invoices/pay", headers={"Authorization": "Bearer nope"})
    assert "s3cret" not in app.log_path.read_text()
