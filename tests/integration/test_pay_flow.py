"""The pay flow end to end on 127.0.0.1: real processes, real PostgreSQL, real HTTP."""

import contextlib
import threading
import time

from tests.integration.conftest import TOKEN, Starter, provider_summary, seed
from tests.support import PostgresServer, ServiceProcess, http


def invoices(app: ServiceProcess) -> list[dict]:
    reply = http("GET", f"{app.url}/invoices")
    assert reply.status == 200
    return reply.body


def pay(app: ServiceProcess) -> dict:
    reply = http("POST", f"{app.url}/invoices/pay", timeout=300)
    assert reply.status == 200, reply.body
    return reply.body


def test_original_invoices_are_listed_with_their_wire_fields(invoice_app: ServiceProcess) -> None:
    listed = {i["InvoiceId"]: i for i in invoices(invoice_app)}
    assert listed["I1"] | {} == {
        "InvoiceId": "I1",
        "CustomerId": "C1",
        "Value": 12.15,
        "Currency": "EUR",
        "IsPaid": False,
        "Status": "PENDING",
    }
    assert (listed["I2"]["Value"], listed["I2"]["Currency"]) == (10.25, "GBP")
    assert (listed["I3"]["Value"], listed["I3"]["Currency"]) == (66.13, "DKK")


def test_the_original_exercise_flow_works_in_dev_list_pay_list_all_paid(
    invoice_app: ServiceProcess,
) -> None:
    """As the original exercise's client does it: no token (dev leaves pay open), no body."""
    before = invoices(invoice_app)
    assert [(i["InvoiceId"], i["IsPaid"]) for i in before] == [
        ("I1", False),
        ("I2", False),
        ("I3", False),
    ]
    reply = http("POST", f"{invoice_app.url}/invoices/pay")
    assert reply.status == 200
    assert all(i["IsPaid"] for i in invoices(invoice_app))


def test_pay_all_pays_every_invoice_and_charges_each_once(
    invoice_app: ServiceProcess, provider: ServiceProcess
) -> None:
    report = pay(invoice_app)

    assert sorted(p["InvoiceId"] for p in report["paid"]) == ["I1", "I2", "I3"]
    assert report["unpaid"] == []
    assert all(i["IsPaid"] and i["Status"] == "PAID" for i in invoices(invoice_app))
    assert provider_summary(provider) == {"charged": 3, "declined": 0, "chargedTwice": []}
    again = pay(invoice_app)
    assert (again["paid"], again["unpaid"], again["paidCount"]) == ([], [], 0), "nothing left"
    assert provider_summary(provider)["charged"] == 3


def test_declines_leave_invoices_unpaid_until_a_later_run_pays_them(
    start: Starter, database_url: str, provider_db: str
) -> None:
    provider = start(
        "payment_provider",
        database_url=provider_db,
        failure_rate="0.5",
        payment_provider_token=TOKEN,
    )
    app = start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=provider.url,
        payment_provider_token=TOKEN,
    )
    seed(database_url, 60)
    first = pay(app)
    declined = [u for u in first["unpaid"] if u["Outcome"] == "declined"]
    assert declined, "FAILURE_RATE=0.5 over 63 invoices declines some"
    by_id = {i["InvoiceId"]: i for i in invoices(app)}
    assert not any(by_id[u["InvoiceId"]]["IsPaid"] for u in declined)

    runs = 1
    while any(not i["IsPaid"] for i in invoices(app)):
        assert runs < 30, "30 pay runs at a 50% decline rate should have paid everything"
        pay(app)
        runs += 1

    summary = provider_summary(provider)
    assert summary["charged"] == 63
    assert summary["chargedTwice"] == []
    assert summary["declined"] > 0


def test_provider_down_then_back_pays_everything_exactly_once(
    start: Starter, invoice_app: ServiceProcess, provider: ServiceProcess, provider_db: str
) -> None:
    provider.terminate()

    report = pay(invoice_app)

    assert report["paid"] == []
    assert {u["Outcome"] for u in report["unpaid"]} == {"unknown"}
    assert not any(i["IsPaid"] for i in invoices(invoice_app))

    # Back on the same port and ledger, as a restarted pod behind its Service would be.
    back = ServiceProcess(
        "payment_provider",
        {"DATABASE_URL": provider_db, "PAYMENT_PROVIDER_TOKEN": TOKEN},
        provider.log_path,
        port=provider.port,
    ).start()
    try:
        assert len(pay(invoice_app)["paid"]) == 3
        assert provider_summary(back) == {"charged": 3, "declined": 0, "chargedTwice": []}
    finally:
        back.kill()


def test_concurrent_pay_on_two_replicas_charges_each_invoice_once(
    start: Starter, database_url: str, provider: ServiceProcess
) -> None:
    replicas = [
        start(
            "invoice_app",
            database_url=database_url,
            payment_provider_url=provider.url,
            payment_provider_token=TOKEN,
            pay_batch_size="20",
        )
        for _ in range(2)
    ]
    seed(database_url, 400)
    reports: list[dict] = []
    threads = [threading.Thread(target=lambda r=r: reports.append(pay(r))) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(report["paidCount"] for report in reports) == 403
    assert all(report["paidCount"] for report in reports), "both replicas took a share"
    assert provider_summary(provider) == {"charged": 403, "declined": 0, "chargedTwice": []}


def test_killed_pay_run_is_finished_by_the_next_one_without_charging_twice(
    start: Starter, database_url: str, provider: ServiceProcess
) -> None:
    app = start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=provider.url,
        payment_provider_token=TOKEN,
        pay_batch_size="500",
        pay_concurrency="2",
        # Short, so that the leases the killed run leaves lapse within the test: 5 s, plus
        # the longest charge (2 s), plus the margin (10 s).
        pay_run_deadline_seconds="5",
        payment_timeout_seconds="1",
        payment_max_retries="0",
    )
    seed(database_url, 1500)
    killer = threading.Timer(0.7, app.kill)
    killer.start()
    with contextlib.suppress(OSError):  # the connection dies with the process, as intended
        http("POST", f"{app.url}/invoices/pay", timeout=120)
    killer.join()
    charged_before_restart = provider_summary(provider)["charged"]
    assert 0 < charged_before_restart < 1503, "the kill landed mid-run"

    restarted = start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=provider.url,
        payment_provider_token=TOKEN,
    )
    # The invoices the killed run had leased wait for their leases to lapse; the rest pay now.
    deadline = time.monotonic() + 60
    while not all(i["IsPaid"] for i in invoices(restarted)):
        assert time.monotonic() < deadline, "leases of a killed run lapse and get paid"
        pay(restarted)
        time.sleep(1)
    assert provider_summary(provider) == {"charged": 1503, "declined": 0, "chargedTwice": []}


def test_wrong_token_is_refused_and_nothing_is_marked_paid(
    start: Starter, database_url: str, provider: ServiceProcess
) -> None:
    app = start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=provider.url,
        payment_provider_token="not-the-token",
    )
    report = pay(app)

    assert report["paid"] == []
    assert {u["Outcome"] for u in report["unpaid"]} == {"rejected"}
    assert "401" in report["unpaid"][0]["Reason"]
    assert not any(i["IsPaid"] for i in invoices(app))
    unauthenticated = http(
        "POST", f"{provider.url}/payments/pay", {"id": "I1", "value": 1, "currency": "EUR"}
    )
    assert unauthenticated.status == 401
    assert provider_summary(provider)["charged"] == 0


def test_antaeus_view_shows_the_same_data_with_integer_ids(invoice_app: ServiceProcess) -> None:
    assert http("GET", f"{invoice_app.url}/rest/health").body == "ok"
    first = http("GET", f"{invoice_app.url}/rest/v1/invoices/1").body
    assert first == {
        "id": 1,
        "customerId": 1,
        "amount": {"value": 12.15, "currency": "EUR"},
        "status": "PENDING",
    }
    listed = http("GET", f"{invoice_app.url}/rest/v1/invoices").body
    assert [(i["id"], i["customerId"]) for i in listed] == [(1, 1), (2, 2), (3, 3)]
    assert http("POST", f"{invoice_app.url}/rest/v1/invoices/pay").body is True
    statuses = {i["status"] for i in http("GET", f"{invoice_app.url}/rest/v1/invoices").body}
    assert statuses == {"PAID"}
    assert http("GET", f"{invoice_app.url}/invoices/I1").body["IsPaid"] is True
    customers = http("GET", f"{invoice_app.url}/rest/v1/customers").body
    assert customers == [
        {"id": 1, "currency": "EUR"},
        {"id": 2, "currency": "GBP"},
        {"id": 3, "currency": "DKK"},
    ]
    assert http("GET", f"{invoice_app.url}/rest/v1/customers/2").body == customers[1]
    for missing in ("/rest/v1/customers/9", "/rest/v1/customers/C2", "/rest/v1/invoices/I1"):
        reply = http("GET", f"{invoice_app.url}{missing}")
        assert (reply.status, bool(reply.body["error"])) == (404, True), missing


def test_antaeus_routes_match_case_insensitively_with_or_without_a_trailing_slash(
    invoice_app: ServiceProcess,
) -> None:
    for path in (
        "/rest/v1/Customers",
        "/rest/v1/customers/",
        "/REST/V1/CUSTOMERS/2/",
        "/rest/v1/Invoices/1/",
        "/Rest/Health",
    ):
        assert http("GET", f"{invoice_app.url}{path}").status == 200, path
    assert http("POST", f"{invoice_app.url}/rest/v1/Invoices/Pay/").body is True


def test_provider_url_given_as_the_original_full_endpoint_pays(
    start: Starter, database_url: str, provider: ServiceProcess
) -> None:
    app = start(
        "invoice_app",
        database_url=database_url,
        payment_provider_url=f"{provider.url}/payments/pay",
        payment_provider_token=TOKEN,
    )
    assert len(pay(app)["paid"]) == 3
    assert provider_summary(provider)["charged"] == 3


def test_connections_the_database_dropped_are_replaced_without_a_failed_request(
    invoice_app: ServiceProcess, postgres: PostgresServer
) -> None:
    """A database restart (a pod rescheduled, a failover) leaves the pool holding dead
    connections; each must be replaced on checkout, not handed to a request or a probe."""
    for _ in range(20):
        assert http("GET", f"{invoice_app.url}/invoices").status == 200
    # As a restart does: every client connection to the server goes, the provider's too.
    dropped = postgres.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
    )
    assert int(dropped) >= 1
    statuses = [http("GET", f"{invoice_app.url}{path}").status for path in ["/readyz"] * 10]
    statuses += [http("GET", f"{invoice_app.url}/invoices").status for _ in range(20)]
    assert statuses == [200] * 30
