"""invoice-app's SQL: schema, seed data, reads, and the claim-and-settle that pay runs use."""

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal

from invoice_app.domain import Invoice, Settlement, Status
from servicekit.db import Cursor, Database, Migration

_SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"

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
    Migration(
        3,
        (
            # The Antaeus view's integer ids: stored, so every replica and restart agrees.
            # Existing rows are numbered in id order (the original I1..I3 become 1..3).
            "ALTER TABLE customers ADD COLUMN number BIGINT",
            "ALTER TABLE invoices ADD COLUMN number BIGINT",
            # When the invoice was added, for the age of the oldest pending one.
            "ALTER TABLE invoices ADD COLUMN created_at {epoch}",
            *(
                f"""UPDATE {table} SET number = n.rn FROM (
                    SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS rn FROM {table}
                ) AS n WHERE {table}.id = n.id"""
                for table in ("customers", "invoices")
            ),
            "CREATE UNIQUE INDEX customers_by_number ON customers (number)",
            "CREATE UNIQUE INDEX invoices_by_number ON invoices (number)",
        ),
        postgresql=(
            "UPDATE invoices SET created_at = EXTRACT(EPOCH FROM now())",
            *(
                statement
                for table in ("customers", "invoices")
                for statement in (
                    f"CREATE SEQUENCE {table}_number_seq OWNED BY {table}.number",
                    f"SELECT setval('{table}_number_seq',"
                    f" (SELECT COALESCE(MAX(number), 0) + 1 FROM {table}), false)",
                    f"ALTER TABLE {table} ALTER COLUMN number"
                    f" SET DEFAULT nextval('{table}_number_seq'), ALTER COLUMN number SET NOT NULL",
                )
            ),
            "ALTER TABLE invoices ALTER COLUMN created_at SET DEFAULT EXTRACT(EPOCH FROM now())",
        ),
        # SQLite cannot add a column with a computed default: triggers fill them in.
        sqlite=(
            f"UPDATE invoices SET created_at = {_SQLITE_NOW}",
            """CREATE TRIGGER customers_number AFTER INSERT ON customers WHEN NEW.number IS NULL
            BEGIN
                UPDATE customers SET number = (SELECT COALESCE(MAX(number), 0) + 1 FROM customers)
                WHERE id = NEW.id;
            END""",
            f"""CREATE TRIGGER invoices_defaults AFTER INSERT ON invoices
            WHEN NEW.number IS NULL OR NEW.created_at IS NULL
            BEGIN
                UPDATE invoices SET
                    number = COALESCE(
                        NEW.number, (SELECT COALESCE(MAX(number), 0) + 1 FROM invoices)),
                    created_at = COALESCE(NEW.created_at, {_SQLITE_NOW})
                WHERE id = NEW.id;
            END""",
        ),
    ),
)

MIGRATIONS += (
    Migration(
        4,
        (
            # Pay runs lease the invoices they charge instead of locking them across network
            # calls: the run's id, and when the lease lapses (epoch seconds).
            "ALTER TABLE invoices ADD COLUMN lease_owner TEXT",
            "ALTER TABLE invoices ADD COLUMN lease_until {epoch}",
        ),
    ),
)

# Queries join only constants into their text (hence the S608 waivers); values are bound.
_SELECT = (
    "SELECT i.id, i.customer_id, i.amount, i.currency, i.status, i.charge_attempt, i.number,"
    " c.number FROM invoices AS i JOIN customers AS c ON c.id = i.customer_id"
)


def _invoice(row: tuple) -> Invoice:
    return Invoice(
        id=row[0],
        customer_id=row[1],
        amount=Decimal(str(row[2])),
        currency=row[3],
        status=Status(row[4]),
        charge_attempt=row[5],
        number=int(row[6]),
        customer_number=int(row[7]),
    )


@dataclass(frozen=True)
class Customer:
    id: str
    number: int
    currency: str


class InvoiceStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def migrate(self, *, wait_seconds: float = 0.0) -> list[int]:
        return self.db.migrate_when_reachable("invoice-app", MIGRATIONS, wait_seconds=wait_seconds)

    def list_invoices(self, *, after_id: str = "", limit: int | None = None) -> list[Invoice]:
        """In id order (the original view), after the id `after_id`."""
        return self._list("i.id > %s ORDER BY i.id", after_id, limit)

    def list_by_number(self, *, after: int = 0, limit: int | None = None) -> list[Invoice]:
        """In number order (the Antaeus view), after the number `after`."""
        return self._list("i.number > %s ORDER BY i.number", after, limit)

    def _list(self, where: str, after: str | int, limit: int | None) -> list[Invoice]:
        sql = f"{_SELECT} WHERE {where}"
        params: tuple = (after,)
        if limit is not None:
            sql += " LIMIT %s"
            params += (limit,)
        with self.db.transaction() as cursor:
            cursor.execute(sql, params)
            return [_invoice(row) for row in cursor.fetchall()]

    def get_invoice(self, invoice_id: str) -> Invoice | None:
        return self._one("i.id = %s", invoice_id)

    def get_by_number(self, number: int) -> Invoice | None:
        return self._one("i.number = %s", number)

    def _one(self, where: str, value: str | int) -> Invoice | None:
        with self.db.transaction() as cursor:
            cursor.execute(f"{_SELECT} WHERE {where}", (value,))
            row = cursor.fetchone()
        return _invoice(row) if row else None

    def list_customers(self) -> list[Customer]:
        with self.db.transaction() as cursor:
            cursor.execute("SELECT id, number, currency FROM customers ORDER BY number")
            return [Customer(row[0], int(row[1]), row[2]) for row in cursor.fetchall()]

    def get_customer(self, number: int) -> Customer | None:
        with self.db.transaction() as cursor:
            cursor.execute(
                "SELECT id, number, currency FROM customers WHERE number = %s", (number,)
            )
            row = cursor.fetchone()
        return Customer(row[0], int(row[1]), row[2]) if row else None

    def count_pending(self) -> int:
        with self.db.transaction() as cursor:
            cursor.execute("SELECT COUNT(*) FROM invoices WHERE status = 'PENDING'")
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def backlog(self) -> dict[str, float]:
        """How many invoices are pending, and how long the oldest has waited (seconds)."""
        with self.db.transaction() as cursor:
            cursor.execute(
                "SELECT COUNT(*), MIN(created_at) FROM invoices WHERE status = 'PENDING'"
            )
            count, oldest = cursor.fetchone() or (0, None)
        age = max(0.0, time.time() - float(oldest)) if oldest is not None else 0.0
        return {"invoices_pending": int(count), "invoices_oldest_pending_age_seconds": age}

    def claim(self, owner: str, after_id: str, limit: int, lease_until: float) -> list[Invoice]:
        # SKIP LOCKED: another run claiming at this instant is passed over, not waited for.
        lock = " FOR UPDATE OF i SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        with self.db.transaction(write=True) as cursor:
            cursor.execute(
                f"{_SELECT} WHERE i.status = 'PENDING' AND i.id > %s"
                " AND (i.lease_until IS NULL OR i.lease_until < %s)"
                f" ORDER BY i.id LIMIT %s{lock}",
                (after_id, time.time(), limit),
            )
            invoices = [_invoice(row) for row in cursor.fetchall()]
            cursor.executemany(
                "UPDATE invoices SET lease_owner = %s, lease_until = %s WHERE id = %s",
                [(owner, lease_until, invoice.id) for invoice in invoices],
            )
        return invoices

    def settle(self, owner: str, settlement: Settlement) -> None:
        with self.db.transaction(write=True) as cursor:
            self._write(cursor, owner, settlement)

    @staticmethod
    def _write(cursor: Cursor, owner: str, settlement: Settlement) -> None:
        release = "lease_owner = NULL, lease_until = NULL"
        if settlement.paid:
            # Paid is the provider's word: it stands even where this run's lease lapsed.
            cursor.executemany(
                "UPDATE invoices SET status = 'PAID', transaction_id = %s,"
                f" paid_at = CURRENT_TIMESTAMP, {release} WHERE id = %s AND status = 'PENDING'",
                [(transaction_id, invoice_id) for invoice_id, transaction_id in settlement.paid],
            )
        # Only while the lease is still this run's: else another run owns the invoice now.
        if settlement.declined:
            cursor.executemany(
                f"UPDATE invoices SET charge_attempt = charge_attempt + 1, {release}"
                " WHERE id = %s AND lease_owner = %s",
                [(invoice_id, owner) for invoice_id in settlement.declined],
            )
        if settlement.released:
            cursor.executemany(
                f"UPDATE invoices SET {release} WHERE id = %s AND lease_owner = %s",
                [(invoice_id, owner) for invoice_id in settlement.released],
            )

    def seed(self, count: int, *, prefix: str | None = None) -> list[str]:
        """Adds `count` PENDING invoices spread over the seeded customers (tests, benchmarks)."""
        prefix = prefix or f"S{uuid.uuid4().hex[:6]}"
        customers = self.list_customers()
        rows = [
            (f"{prefix}-{n:06d}", customer.id, Decimal(100 + n % 9900) / 100, customer.currency)
            for n in range(count)
            for customer in [customers[n % len(customers)]]
        ]
        with self.db.transaction(write=True) as cursor:
            cursor.executemany(
                "INSERT INTO invoices (id, customer_id, amount, currency) VALUES (%s, %s, %s, %s)",
                rows,
            )
        return [row[0] for row in rows]
