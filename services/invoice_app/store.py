"""invoice-app's SQL: schema, seed data, reads, and the claim-and-settle that pay runs use."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal

from invoice_app.domain import Invoice, Settlement, Status
from servicekit.db import Cursor, Database, Migration

MIGRATIONS = (
    Migration(
        1,
        (
            """CREATE TABLE IF NOT EXISTS customers (
                id TEXT PRIMARY KEY,
                currency TEXT NOT NULL
            )""",
            """CREATE TABLE IF NOT EXISTS invoices (
                id TEXT PRIMARY KEY,
                customer_id TEXT NOT NULL REFERENCES customers (id),
                amount {money} NOT NULL,
                currency TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'PAID')),
                charge_attempt INTEGER NOT NULL DEFAULT 0,
                transaction_id TEXT,
                paid_at {timestamp}
            )""",
            # Pay runs only ever look for PENDING rows, in id order.
            "CREATE INDEX IF NOT EXISTS invoices_pending ON invoices (id) WHERE status = 'PENDING'",
        ),
    ),
    Migration(
        2,
        (
            # The original exercise's invoices, so its clients see what they expect.
            """INSERT INTO customers (id, currency) VALUES
                ('C1', 'EUR'), ('C2', 'GBP'), ('C3', 'DKK')
                ON CONFLICT (id) DO NOTHING""",
            """INSERT INTO invoices (id, customer_id, amount, currency) VALUES
                ('I1', 'C1', '12.15', 'EUR'), ('I2', 'C2', '10.25', 'GBP'),
                ('I3', 'C3', '66.13', 'DKK')
                ON CONFLICT (id) DO NOTHING""",
        ),
    ),
)

# Queries join only this constant into their text (hence the S608 waivers); values are bound.
_COLUMNS = "id, customer_id, amount, currency, status, charge_attempt"


def _invoice(row: tuple) -> Invoice:
    return Invoice(
        id=row[0],
        customer_id=row[1],
        amount=Decimal(str(row[2])),
        currency=row[3],
        status=Status(row[4]),
        charge_attempt=row[5],
    )


@dataclass
class _Batch:
    cursor: Cursor
    invoices: list[Invoice]
    settlement: Settlement = field(default_factory=Settlement)

    def settle(self, settlement: Settlement) -> None:
        self.settlement = settlement


class InvoiceStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def migrate(self, *, wait_seconds: float = 0.0) -> list[int]:
        return self.db.migrate_when_reachable("invoice-app", MIGRATIONS, wait_seconds=wait_seconds)

    def list_invoices(self, *, after_id: str = "", limit: int | None = None) -> list[Invoice]:
        sql = f"SELECT {_COLUMNS} FROM invoices WHERE id > %s ORDER BY id"  # noqa: S608
        params: tuple = (after_id,)
        if limit is not None:
            sql += " LIMIT %s"
            params += (limit,)
        with self.db.transaction() as cursor:
            cursor.execute(sql, params)
            return [_invoice(row) for row in cursor.fetchall()]

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        with self.db.transaction() as cursor:
            cursor.execute(f"SELECT {_COLUMNS} FROM invoices WHERE id = %s", (invoice_id,))  # noqa: S608
            row = cursor.fetchone()
        return _invoice(row) if row else None

    def list_customers(self) -> list[tuple[str, str]]:
        with self.db.transaction() as cursor:
            cursor.execute("SELECT id, currency FROM customers ORDER BY id")
            return [(row[0], row[1]) for row in cursor.fetchall()]

    def get_customer(self, customer_id: str) -> tuple[str, str] | None:
        with self.db.transaction() as cursor:
            cursor.execute("SELECT id, currency FROM customers WHERE id = %s", (customer_id,))
            row = cursor.fetchone()
        return (row[0], row[1]) if row else None

    def count_pending(self) -> int:
        with self.db.transaction() as cursor:
            cursor.execute("SELECT COUNT(*) FROM invoices WHERE status = 'PENDING'")
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def claim_pending(self, after_id: str, limit: int) -> Iterator[_Batch]:
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        with self.db.transaction(write=True) as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM invoices WHERE status = 'PENDING' AND id > %s"  # noqa: S608
                f" ORDER BY id LIMIT %s{lock}",
                (after_id, limit),
            )
            batch = _Batch(cursor, [_invoice(row) for row in cursor.fetchall()])
            yield batch
            self._write(cursor, batch.settlement)

    @staticmethod
    def _write(cursor: Cursor, settlement: Settlement) -> None:
        if settlement.paid:
            cursor.executemany(
                "UPDATE invoices SET status = 'PAID', transaction_id = %s,"
                " paid_at = CURRENT_TIMESTAMP WHERE id = %s AND status = 'PENDING'",
                [(transaction_id, invoice_id) for invoice_id, transaction_id in settlement.paid],
            )
        if settlement.declined:
            cursor.executemany(
                "UPDATE invoices SET charge_attempt = charge_attempt + 1 WHERE id = %s",
                [(invoice_id,) for invoice_id in settlement.declined],
            )

    def seed(self, count: int, *, prefix: str | None = None) -> list[str]:
        """Adds `count` PENDING invoices spread over the seeded customers (tests, benchmarks)."""
        prefix = prefix or f"S{uuid.uuid4().hex[:6]}"
        customers = self.list_customers()
        rows = [
            (f"{prefix}-{n:06d}", customer, Decimal(100 + n % 9900) / 100, currency)
            for n in range(count)
            for customer, currency in [customers[n % len(customers)]]
        ]
        with self.db.transaction(write=True) as cursor:
            cursor.executemany(
                "INSERT INTO invoices (id, customer_id, amount, currency) VALUES (%s, %s, %s, %s)",
                rows,
            )
        return [row[0] for row in rows]
