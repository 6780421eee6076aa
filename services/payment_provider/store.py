"""payment-provider's ledger: one row per idempotency key, written in the same statement that
decides whether this request is new, so concurrent repeats of a key cannot both charge."""

import uuid
from decimal import Decimal

from payment_provider.domain import Answer, ChargeRequest
from servicekit.db import Database, Migration

MIGRATIONS = (
    Migration(
        1,
        (
            """CREATE TABLE IF NOT EXISTS payments (
                idempotency_key TEXT PRIMARY KEY,
                payment_id TEXT NOT NULL,
                amount {money} NOT NULL,
                currency TEXT NOT NULL,
                status_code INTEGER NOT NULL,
                transaction_id TEXT,
                fingerprint TEXT NOT NULL,
                created_at {timestamp} NOT NULL DEFAULT CURRENT_TIMESTAMP
            )""",
            "CREATE INDEX IF NOT EXISTS payments_by_payment_id ON payments (payment_id)",
        ),
    ),
)


_LIST = (
    "SELECT payment_id, amount, currency, status_code, transaction_id, idempotency_key"
    " FROM payments"
)
_ORDER = "ORDER BY created_at, idempotency_key LIMIT %s"


class KeyReused(Exception):
    """The idempotency key was first used for a different request."""


class PaymentLedger:
    def __init__(self, database: Database) -> None:
        self.db = database

    def migrate(self, *, wait_seconds: float = 0.0) -> list[int]:
        return self.db.migrate_when_reachable(
            "payment-provider", MIGRATIONS, wait_seconds=wait_seconds
        )

    def record(
        self, key: str | None, request: ChargeRequest, answer: Answer
    ) -> tuple[Answer, bool]:
        """Stores `answer` under `key` unless the key is already known. Returns the answer that
        stands for the key, and whether it is a replay of an earlier one."""
        key = key or f"auto-{uuid.uuid4()}"
        with self.db.transaction(write=True) as cursor:
            cursor.execute(
                "INSERT INTO payments (idempotency_key, payment_id, amount, currency,"
                " status_code, transaction_id, fingerprint) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                (
                    key,
                    request.id,
                    request.value,
                    request.currency,
                    answer.status,
                    answer.body.get("transactionId"),
                    request.fingerprint,
                ),
            )
            if cursor.rowcount == 1:
                return answer, False
            cursor.execute(
                "SELECT fingerprint, status_code, transaction_id FROM payments"
                " WHERE idempotency_key = %s",
                (key,),
            )
            row = cursor.fetchone()
        if row is None or row[0] != request.fingerprint:
            raise KeyReused(key)
        return _answer(request.id, row[1], row[2]), True

    def list(self, payment_id: str | None, limit: int) -> list[dict]:
        with self.db.transaction() as cursor:
            if payment_id:
                cursor.execute(f"{_LIST} WHERE payment_id = %s {_ORDER}", (payment_id, limit))
            else:
                cursor.execute(f"{_LIST} {_ORDER}", (limit,))
            rows = cursor.fetchall()
        return [
            {
                "id": row[0],
                "value": Decimal(str(row[1])),
                "currency": row[2],
                "status": "CHARGED" if row[3] == 200 else "DECLINED",
                "transactionId": row[4],
                "idempotencyKey": row[5],
            }
            for row in rows
        ]

    def summary(self) -> dict:
        """Totals, and any payment id charged more than once: the number that must stay 0."""
        with self.db.transaction() as cursor:
            cursor.execute(
                "SELECT"
                " COALESCE(SUM(CASE WHEN status_code = 200 THEN 1 ELSE 0 END), 0),"
                " COALESCE(SUM(CASE WHEN status_code = 402 THEN 1 ELSE 0 END), 0)"
                " FROM payments"
            )
            charged, declined = cursor.fetchone() or (0, 0)
            cursor.execute(
                "SELECT payment_id FROM payments WHERE status_code = 200"
                " GROUP BY payment_id HAVING COUNT(*) > 1 ORDER BY payment_id"
            )
            charged_twice = [row[0] for row in cursor.fetchall()]
        return {"charged": int(charged), "declined": int(declined), "chargedTwice": charged_twice}


def _answer(payment_id: str, status: int, transaction_id: str | None) -> Answer:
    if status == 200:
        return Answer(200, {"id": payment_id, "transactionId": transaction_id})
    return Answer(status, {"id": payment_id, "error": "Payment declined"})
