"""The pay rules, against the real store on a SQLite file and a scripted provider."""

import threading
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from invoice_app.domain import (
    ChargeResult,
    Invoice,
    Outcome,
    RunLimits,
    Status,
    Stop,
    pay_pending,
)
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
    assert report["unpaidCount"] == 1
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


def test_a_failure_while_settling_rolls_the_batch_back_and_its_leases_lapse(
    store: InvoiceStore,
) -> None:
    provider = ScriptedProvider()

    class Boom(Exception):
        pass

    original = store._write

    def failing_write(cursor, owner, settlement) -> None:
        original(cursor, owner, settlement)
        raise Boom

    store._write = failing_write  # type: ignore[method-assign]
    limits = RunLimits(lease_seconds=1.0)
    with pytest.raises(Boom):
        pay_pending(store, provider.charge, batch_size=10, concurrency=1, limits=limits)
    assert set(statuses(store).values()) == {Status.PENDING}
    store._write = original  # type: ignore[method-assign]

    assert store.claim("another-run", "", 10, lease_until=time.time() + 60) == [], "still leased"
    time.sleep(1.1)
    again = pay_pending(store, provider.charge, batch_size=10, concurrency=1)
    assert again.paid_count == 3, "an expired lease is claimed again"
    assert Counter(provider.keys) == {f"invoice-I{n}-attempt-0": 2 for n in (1, 2, 3)}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_run_starts_no_charge_after_its_deadline(store: InvoiceStore) -> None:
    store.seed(20, prefix="D")
    clock = FakeClock()
    provider = ScriptedProvider()

    def slow(invoice: Invoice) -> ChargeResult:
        clock.now += 1.0  # each charge takes a second
        return provider.charge(invoice)

    report = pay_pending(
        store,
        slow,
        batch_size=4,
        concurrency=1,
        limits=RunLimits(deadline_seconds=5.5),
        clock=clock,
    )
    assert report.stopped is Stop.DEADLINE
    assert report.paid_count == 6
    assert len(provider.keys) == 6
    assert {u["Outcome"] for u in report.unpaid} == {"skipped"}
    assert store.claim("next-run", "", 100, time.time() + 60), "skipped invoices were released"
    assert Counter(statuses(store).values())[Status.PAID] == 6


def test_the_breaker_stops_the_run_after_n_unknown_outcomes_in_a_row(
    store: InvoiceStore,
) -> None:
    store.seed(30, prefix="K")
    provider = ScriptedProvider({i.id: [Outcome.UNKNOWN] for i in store.list_invoices()})
    report = pay_pending(
        store,
        provider.charge,
        batch_size=5,
        concurrency=1,
        limits=RunLimits(breaker_threshold=4),
    )
    assert report.stopped is Stop.BREAKER
    assert len(provider.keys) == 4
    assert report.paid_count == 0
    assert set(statuses(store).values()) == {Status.PENDING}


def test_a_definite_answer_closes_the_breaker(store: InvoiceStore) -> None:
    unknown_every_other = {i.id: [Outcome.UNKNOWN] for i in store.list_invoices()[::2]}
    report = pay_pending(
        store,
        ScriptedProvider(unknown_every_other).charge,
        batch_size=5,
        concurrency=1,
        limits=RunLimits(breaker_threshold=2),
    )
    assert report.stopped is Stop.COMPLETE


def test_the_report_is_bounded_but_counts_everything(store: InvoiceStore) -> None:
    store.seed(50, prefix="R")
    report = pay_pending(
        store,
        ScriptedProvider().charge,
        batch_size=7,
        concurrency=2,
        limits=RunLimits(sample_size=5),
    ).as_json()
    assert report["paidCount"] == 53
    assert len(report["paid"]) == 5
    assert report["stopped"] == "complete"


def test_unpaid_outcomes_are_counted_beyond_the_sample(store: InvoiceStore) -> None:
    store.seed(20, prefix="U")
    declining = ScriptedProvider({i.id: [Outcome.DECLINED] for i in store.list_invoices()})
    report = pay_pending(
        store, declining.charge, batch_size=7, concurrency=2, limits=RunLimits(sample_size=2)
    )
    assert report.unpaid_by_outcome == {"declined": 23}
    assert len(report.unpaid) == 2


def test_a_leased_invoice_is_not_claimed_by_another_run(store: InvoiceStore) -> None:
    mine = store.claim("run-a", "", 2, lease_until=time.time() + 60)
    theirs = store.claim("run-b", "", 10, lease_until=time.time() + 60)
    assert [i.id for i in mine] == ["I1", "I2"]
    assert [i.id for i in theirs] == ["I3"]
