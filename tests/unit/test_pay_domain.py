"""The pay rules, against the real store on a SQLite file and a scripted provider."""

import threading
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from invoice_app.domain import ChargeResult, Invoice, Outcome, Status, pay_pending
from invoice_app.store import InvoiceStore
from servicekit.db import Database


@pytest.fixture
def store(tmp_path: Path) -> InvoiceStore:
    store = InvoiceStore(Database(f"sqlite:///{tmp_path / 'invoices.db'}"))
    store.migrate()
    return store


class ScriptedProvider:
    """Answers each invoice from a script, and records every key it was asked with."""

    def __init__(self, answers: dict[str, list[Outcome]] | None = None) -> None:
        self.answers = answers or {}
        self.keys: list[str] = []
        self.lock = threading.Lock()

    def charge(self, invoice: Invoice) -> ChargeResult:
        with self.lock:
            self.keys.append(invoice.idempotency_key)
            script = self.answers.get(invoice.id, [])
            outcome = script.pop(0) if script else Outcome.CONFIRMED
        if outcome is Outcome.CONFIRMED:
            return ChargeResult(outcome, transaction_id=f"tx-{invoice.idempotency_key}")
        return ChargeResult(outcome, reason=outcome.value)


def pay(store: InvoiceStore, provider: ScriptedProvider, batch_size: int = 2) -> dict:
    return pay_pending(store, provider.charge, batch_size=batch_size, concurrency=3).as_json()


def statuses(store: InvoiceStore) -> dict[str, Status]:
    return {i.id: i.status for i in store.list_invoices()}


def test_seeded_invoices_keep_exact_amounts(store: InvoiceStore) -> None:
    amounts = {i.id: i.amount for i in store.list_invoices()}
    assert amounts == {"I1": Decimal("12.15"), "I2": Decimal("10.25"), "I3": Decimal("66.13")}


def test_confirmed_charges_mark_invoices_paid(store: InvoiceStore) -> None:
    report = pay(store, ScriptedProvider())
    assert [p["InvoiceId"] for p in report["paid"]] == ["I1", "I2", "I3"]
    assert set(statuses(store).values()) == {Status.PAID}


def test_declined_charge_leaves_invoice_unpaid_and_next_run_uses_a_new_key(
    store: InvoiceStore,
) -> None:
    provider = ScriptedProvider({"I2": [Outcome.DECLINED]})
    report = pay(store, provider)
    assert report["unpaid"] == [{"InvoiceId": "I2", "Outcome": "declined", "Reason": "declined"}]
    assert statuses(store)["I2"] is Status.PENDING

    pay(store, provider)
    assert statuses(store)["I2"] is Status.PAID
    assert [k for k in provider.keys if "I2" in k] == [
        "invoice-I2-attempt-0",
        "invoice-I2-attempt-1",
    ]


@pytest.mark.parametrize("outcome", [Outcome.UNKNOWN, Outcome.REJECTED])
def test_unconfirmed_charge_is_retried_with_the_same_key(
    store: InvoiceStore, outcome: Outcome
) -> None:
    provider = ScriptedProvider({"I1": [outcome]})
    pay(store, provider)
    assert statuses(store)["I1"] is Status.PENDING

    pay(store, provider)
    assert statuses(store)["I1"] is Status.PAID
    assert [k for k in provider.keys if "I1" in k] == ["invoice-I1-attempt-0"] * 2


def test_confirmation_without_transaction_id_does_not_mark_paid(store: InvoiceStore) -> None:
    report = pay_pending(
        store,
        lambda invoice: ChargeResult(Outcome.CONFIRMED, transaction_id=None),
        batch_size=10,
        concurrency=1,
    )
    assert report.paid == []
    assert set(statuses(store).values()) == {Status.PENDING}


def test_a_charge_that_raises_leaves_its_invoice_pending_and_others_paid(
    store: InvoiceStore,
) -> None:
    provider = ScriptedProvider()

    def flaky(invoice: Invoice) -> ChargeResult:
        if invoice.id == "I3":
            raise RuntimeError("boom")
        return provider.charge(invoice)

    report = pay_pending(store, flaky, batch_size=10, concurrency=2)
    assert [u["Outcome"] for u in report.unpaid] == ["unknown"]
    assert statuses(store) == {"I1": Status.PAID, "I2": Status.PAID, "I3": Status.PENDING}


def test_one_run_visits_each_pending_invoice_once(store: InvoiceStore) -> None:
    store.seed(25, prefix="B")
    provider = ScriptedProvider({f"B-{n:06d}": [Outcome.DECLINED] * 5 for n in range(25)})
    pay(store, provider, batch_size=4)
    assert max(Counter(provider.keys).values()) == 1
    assert len(provider.keys) == 28


def test_a_failure_while_settling_rolls_the_whole_batch_back(store: InvoiceStore) -> None:
    provider = ScriptedProvider()

    class Boom(Exception):
        pass

    original = store._write

    def failing_write(cursor, settlement) -> None:
        original(cursor, settlement)
        raise Boom

    store._write = failing_write  # type: ignore[method-assign]
    with pytest.raises(Boom):
        pay(store, provider, batch_size=10)
    assert set(statuses(store).values()) == {Status.PENDING}
