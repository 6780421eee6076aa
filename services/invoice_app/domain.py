"""How invoices get paid. Pure logic: the ledger (store.py) and the provider client
(payments.py) come in as arguments, so every rule here is unit-testable.

The rules that keep money safe:
- An invoice is marked PAID only when the provider confirmed the charge (a 200 carrying a
  transaction id for that invoice). Any other answer leaves it PENDING.
- Every charge carries an idempotency key derived from the invoice and its attempt number.
  After a decline the attempt number moves on, so the next run asks again; after an unknown
  outcome (timeout, 5xx) it stays, so the next run repeats the same key and the provider
  answers from its record instead of charging twice.
- No database lock is held across a network call: a run claims a batch by writing a lease
  (its run id and an expiry) and commits, charges, then settles and releases in a second short
  transaction. Two runs never hold the same invoice; a run that died leaves leases that expire
  and are claimed again, and the repeated key makes that second charge a replay.
- Every run has a deadline and a circuit breaker: it starts no charge after its deadline, nor
  after N unknown outcomes in a row (a provider that is down), and says which stopped it.
"""

import enum
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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
    number: int = 0  # the Antaeus view's integer id
    customer_number: int = 0

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
    """What a batch writes back, releasing its leases."""

    paid: list[tuple[str, str]] = field(default_factory=list)  # (invoice id, transaction id)
    declined: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)  # unknown, rejected, or never charged


class Ledger(Protocol):
    def claim(self, owner: str, after_id: str, limit: int, lease_until: float) -> list[Invoice]:
        """Leases up to `limit` PENDING invoices with ids above `after_id` whose lease (if any)
        has expired, to `owner` until `lease_until` (epoch seconds), and commits."""
        ...

    def settle(self, owner: str, settlement: Settlement) -> None:
        """Writes the outcomes and releases `owner`'s leases on them, in one transaction."""
        ...


class Stop(enum.StrEnum):
    COMPLETE = "complete"  # every pending invoice this run could claim was tried
    DEADLINE = "deadline"  # the run's time was up
    BREAKER = "breaker"  # too many unknown outcomes in a row: the provider is not answering


@dataclass(frozen=True)
class RunLimits:
    deadline_seconds: float = 55.0
    breaker_threshold: int = 5
    sample_size: int = 100
    # How long claimed invoices stay this run's: past the deadline, plus the longest a charge
    # started just before it can take (config.py derives it), so no lease expires mid-charge.
    lease_seconds: float = 120.0


SKIPPED = "skipped"  # claimed, but the run stopped before charging it


@dataclass
class PayReport:
    """Counts, and a bounded sample of each list: a run over a million invoices answers with
    a few kilobytes, not every invoice."""

    sample_size: int = 100
    paid: list[dict[str, str]] = field(default_factory=list)
    unpaid: list[dict[str, str]] = field(default_factory=list)
    paid_count: int = 0
    unpaid_count: int = 0
    unpaid_by_outcome: Counter[str] = field(default_factory=Counter)  # all, not the sample
    stopped: Stop = Stop.COMPLETE

    def add_paid(self, entry: dict[str, str]) -> None:
        self.paid_count += 1
        if len(self.paid) < self.sample_size:
            self.paid.append(entry)

    def add_unpaid(self, entry: dict[str, str]) -> None:
        self.unpaid_count += 1
        self.unpaid_by_outcome[entry["Outcome"]] += 1
        if len(self.unpaid) < self.sample_size:
            self.unpaid.append(entry)

    def as_json(self) -> dict[str, object]:
        return {
            "paid": self.paid,
            "unpaid": self.unpaid,
            "paidCount": self.paid_count,
            "unpaidCount": self.unpaid_count,
            "stopped": self.stopped.value,
        }


def settle(
    invoices: list[Invoice], results: list[ChargeResult | None], report: PayReport
) -> Settlement:
    """`None` stands for an invoice the run did not charge (it stopped first)."""
    settlement = Settlement()
    for invoice, result in zip(invoices, results, strict=True):
        if result is None:
            settlement.released.append(invoice.id)
            report.add_unpaid(
                {"InvoiceId": invoice.id, "Outcome": SKIPPED, "Reason": "the pay run stopped"}
            )
            continue
        if result.outcome is Outcome.CONFIRMED and result.transaction_id:
            settlement.paid.append((invoice.id, result.transaction_id))
            report.add_paid({"InvoiceId": invoice.id, "TransactionId": result.transaction_id})
            continue
        if result.outcome is Outcome.DECLINED:
            settlement.declined.append(invoice.id)
        else:
            settlement.released.append(invoice.id)
        report.add_unpaid(
            {"InvoiceId": invoice.id, "Outcome": result.outcome.value, "Reason": result.reason}
        )
    return settlement


class Breaker:
    """Opens after `threshold` unknown outcomes in a row; any definite answer closes it."""

    def __init__(self, threshold: int) -> None:
        self.threshold = threshold
        self._unknown_in_a_row = 0
        self._lock = threading.Lock()
        self.open = False

    def record(self, outcome: Outcome) -> None:
        with self._lock:
            self._unknown_in_a_row = self._unknown_in_a_row + 1 if outcome is Outcome.UNKNOWN else 0
            if self._unknown_in_a_row >= self.threshold:
                self.open = True


def pay_pending(
    ledger: Ledger,
    charge: Charge,
    *,
    batch_size: int,
    concurrency: int,
    limits: RunLimits | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> PayReport:
    """One pass over every PENDING invoice that no other pay run holds right now, until done,
    the deadline, or the breaker."""
    limits = limits or RunLimits()
    report = PayReport(sample_size=limits.sample_size)
    owner = f"run-{uuid.uuid4()}"
    deadline = clock() + limits.deadline_seconds
    lease_until = wall_clock() + limits.lease_seconds
    breaker = Breaker(limits.breaker_threshold)

    def stopping() -> bool:
        return breaker.open or clock() >= deadline

    def charge_one(invoice: Invoice) -> ChargeResult | None:
        if stopping():
            return None
        result = _never_raises(charge)(invoice)
        breaker.record(result.outcome)
        return result

    after_id, ran_out = "", False
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="charge") as pool:
        while not stopping():
            invoices = ledger.claim(owner, after_id, batch_size, lease_until)
            if not invoices:
                ran_out = True
                break
            after_id = invoices[-1].id
            results = list(pool.map(charge_one, invoices))
            ledger.settle(owner, settle(invoices, results, report))
    if breaker.open:
        report.stopped = Stop.BREAKER
    elif not ran_out:
        report.stopped = Stop.DEADLINE
    return report


def _never_raises(charge: Charge) -> Charge:
    # A bug in one charge must not abandon the batch's other, already confirmed charges.
    def guarded(invoice: Invoice) -> ChargeResult:
        try:
            return charge(invoice)
        except Exception as error:
            return ChargeResult(Outcome.UNKNOWN, f"charge failed: {error}")

    return guarded
