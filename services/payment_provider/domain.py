"""What a charge request must look like, and what the provider answers. Pure logic."""

import hashlib
import json
import random
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_ID_LENGTH = 128
MAX_KEY_LENGTH = 255


class InvalidRequest(ValueError):
    """A charge request the provider refuses with a 400 and this message."""


@dataclass(frozen=True)
class ChargeRequest:
    id: str
    value: Decimal
    currency: str

    @property
    def fingerprint(self) -> str:
        """Identifies the request's content, so a reused idempotency key can be checked."""
        canonical = json.dumps([self.id, str(self.value), self.currency])
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def parse(payload: Any) -> ChargeRequest:
    if not isinstance(payload, dict):
        raise InvalidRequest("The request body must be a JSON object")
    missing = [name for name in ("id", "value", "currency") if payload.get(name) in (None, "")]
    if missing:
        raise InvalidRequest(f"Missing required field(s): {', '.join(missing)}")
    invoice_id, value, currency = payload["id"], payload["value"], payload["currency"]
    if not (isinstance(invoice_id, str) and len(invoice_id) <= MAX_ID_LENGTH):
        raise InvalidRequest(f"'id' must be a string of at most {MAX_ID_LENGTH} characters")
    if not _storable(invoice_id):
        raise InvalidRequest("'id' must not contain control characters or invalid Unicode")
    amount = _amount(value)
    if not (isinstance(currency, str) and len(currency) == 3 and currency.isalpha()):
        raise InvalidRequest("'currency' must be a three-letter ISO 4217 code, e.g. EUR")
    return ChargeRequest(invoice_id, amount, currency.upper())


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _storable(text: str) -> bool:
    """No control characters (the ledger and logs stay clean) and valid UTF-8 (no lone
    surrogates, which PostgreSQL cannot store)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return _CONTROL.search(text) is None


def _amount(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise InvalidRequest("'value' must be a number")
    try:
        amount = Decimal(value)
        valid = amount.is_finite() and amount > 0 and amount == amount.quantize(Decimal("0.01"))
    except InvalidOperation:
        valid = False
    if not valid or amount >= Decimal("1e10"):
        raise InvalidRequest("'value' must be a positive amount with at most 2 decimals")
    return amount


def validate_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def decide(request: ChargeRequest, failure_rate: float, rng: random.Random) -> Answer:
    """Charges or declines; declines happen at `failure_rate`, to exercise the payer's retries."""
    if rng.random() < failure_rate:
        return Answer(402, {"id": request.id, "error": "Payment declined"})
    return Answer(200, {"id": request.id, "transactionId": str(uuid.uuid4())})
