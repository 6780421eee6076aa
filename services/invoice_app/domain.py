"""How invoices get paid. Pure logic: the ledger (store.py) and the provider client
(payments.py) come in as arguments, so every rule here is unit-testable.

The rules that keep money safe:
- An invoice is marked PAID only when the provider confirmed the charge (a 200 carrying a
  transaction id for that invoice). Any other answer leaves it PENDING.
- Every charge carries an idempotency key derived from the invoice and its attempt number.
  After a decline the attempt number moves on, so the next run asks again; after an unknown
  outcome (timeout, 5xx) it stays, so the next run repeats the same key and the provider
  answers from its record instead of charging twice.
- Invoices are claimed with row locks that are held until their outcomes are written, so two
  replicas paying at once never charge the same invoice.
"""

import enum
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


class Status(enum.StrEnum):
    PENDING = "PENDING"
    PAID = "PAID"


@dataclass(frozen=True)
class Invoice:
    id: str
    customer_id: str
    amount: Decimal
    currency: str
    status: Status
    charge_attempt: int = 0

    @property
    def idempotency_key(self) -> str:
        return f"invoice-{self.id}-attempt-{self.charge_attempt}"


class Outcome(enum.Enum):
    CONFIRMED = "confirmed"  # the provider charged it: mark PAID
    DECLINED = "declined"  # a definite no: stay PENDING, next run uses a new key
    REJECTED = "rejected"  # the request itself was refused (auth, validation): nothing charged
    UNKNOWN = "unknown"  # no trustworthy answer: stay PENDING, next run repeats the key


@dataclass(frozen=True)
class ChargeResult:
    outcome: Outcome
    reason: str = ""
    transaction_id: str | None = None


Charge = Callable[[Invoice], ChargeResult]


@dataclass
class Settlement:
    """What a batch writes back when its transaction commits."""

    paid: list[tuple[str, str]] = field(default_factory=list)  # (invoice id, transaction id)
    declined: list[str] = field(default_factory=list)


class ClaimedBatch(Protocol):
    invoices: list[Invoice]

    def settle(self, settlement: Settlement) -> None: ...


class Ledger(Protocol):
    def claim_pending(self, after_id: str, limit: int) -> AbstractContextManager[ClaimedBatch]:
        """Locks up to `limit` PENDING invoices with ids above `after_id`, skipping any that
        another pay run holds. Leaving the context writes the settlement and releases them."""
        ...

    def count_pending(self) -> int: ...


@dataclass
class PayReport:
    paid: list[dict[str, str]] = field(default_factory=list)
    unpaid: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {"paid": self.paid, "unpaid": self.unpaid}


def settle(invoices: list[Invoice], results: list[ChargeResult], report: PayReport) -> Settlement:
    settlement = Settlement()
    for invoice, result in zip(invoices, results, strict=True):
        if result.outcome is Outcome.CONFIRMED and result.transaction_id:
            settlement.paid.append((invoice.id, result.transaction_id))
            report.paid.append({"InvoiceId": invoice.id, "TransactionId": result.transaction_id})
            continue
        if result.outcome is Outcome.DECLINED:
            settlement.declined.append(invoice.id)
        report.unpaid.append(
            {"InvoiceId": invoice.id, "Outcome": result.outcome.value, "Reason": result.reason}
        )
    return settlement


def pay_pending(ledger: Ledger, charge: Charge, *, batch_size: int, concurrency: int) -> PayReport:
    """One pass over every PENDING invoice that no other pay run holds right now."""
    report = PayReport()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="charge") as pool:
        for batch in _batches(ledger, batch_size):
            results = list(pool.map(_never_raises(charge), batch.invoices))
            batch.settle(settle(batch.invoices, results, report))
    return report


def _batches(ledger: Ledger, batch_size: int) -> Iterator[ClaimedBatch]:
    after_id = ""
    while True:
        with ledger.claim_pending(after_id, batch_size) as batch:
            if not batch.invoices:
                return
            yield batch
            after_id = batch.invoices[-1].id


def _never_raises(charge: Charge) -> Charge:
    # A bug in one charge must not abandon the batch's other, already confirmed charges.
    def guarded(invoice: Invoice) -> ChargeResult:
        try:
            return charge(invoice)
        except Exception as error:
            return ChargeResult(Outcome.UNKNOWN, f"charge failed: {error}")

    return guarded
