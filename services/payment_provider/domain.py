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
    """A charge request the provider refuses with a 400: `message` is the original
    provider's text (clients compare it), `detail` says exactly what was wrong."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


# The original payment-provider's texts, which existing clients compare verbatim.
EMPTY_BODY = "empty body request"
BAD_PARAMETERS = "failed to process payment request parameters"
NO_ID = "could not retrieve payment id"
NO_VALUE = "could not retrieve payment value"
NO_CURRENCY = "could not retrieve payment currency"
_CURRENCY = re.compile("[A-Z]{3}")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class ChargeRequest:
    id: str
    value: Decimal
    currency: str

    @property
    def fingerprint(self) -> str:
        """Identifies the request's content, so a reused idempotency key can be checked. The
        amount is canonical (two decimals): 10, 10.0 and 10.00 are one payment."""
        canonical = json.dumps([self.id, str(self.value.quantize(CENT)), self.currency])
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]


def parse(payload: Any) -> ChargeRequest:
    """Checks in the original's order: the shape and field types first (its JSON decoding),
    then each field's presence; then what the original never checked, under BAD_PARAMETERS."""
    if not isinstance(payload, dict):
        raise InvalidRequest(BAD_PARAMETERS, "The request body must be a JSON object")
    invoice_id, value, currency = (payload.get(name) for name in ("id", "value", "currency"))
    if not isinstance(invoice_id, str | None):
        raise InvalidRequest(BAD_PARAMETERS, "'id' must be a string")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | Decimal)):
        raise InvalidRequest(BAD_PARAMETERS, "'value' must be a number")
    if not isinstance(currency, str | None):
        raise InvalidRequest(BAD_PARAMETERS, "'currency' must be a string")
    if not invoice_id:
        raise InvalidRequest(NO_ID, "'id' is missing or empty")
    if value is None or value == 0:
        raise InvalidRequest(NO_VALUE, "'value' is missing or zero")
    if not currency:
        raise InvalidRequest(NO_CURRENCY, "'currency' is missing or empty")
    if len(invoice_id) > MAX_ID_LENGTH:
        raise InvalidRequest(BAD_PARAMETERS, f"'id' must be at most {MAX_ID_LENGTH} characters")
    if not _storable(invoice_id):
        raise InvalidRequest(
            BAD_PARAMETERS, "'id' must not contain control characters or invalid Unicode"
        )
    amount = _amount(value)
    if not _CURRENCY.fullmatch(currency):
        raise InvalidRequest(
            BAD_PARAMETERS, "'currency' must be a three-letter ISO 4217 code in capitals, e.g. EUR"
        )
    return ChargeRequest(invoice_id, amount, currency)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _storable(text: str) -> bool:
    """No control characters (the ledger and logs stay clean) and valid UTF-8 (no lone
    surrogates, which PostgreSQL cannot store)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return _CONTROL.search(text) is None


def _amount(value: int | Decimal) -> Decimal:
    try:
        amount = Decimal(value)
        valid = amount.is_finite() and amount > 0 and amount == amount.quantize(CENT)
    except InvalidOperation:
        valid = False
    if not valid or amount >= Decimal("1e10"):
        raise InvalidRequest(
            BAD_PARAMETERS, "'value' must be a positive amount with at most 2 decimals"
        )
    return amount


def validate_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not key or len(key) > MAX_KEY_LENGTH or not (key.isascii() and key.isprintable()):
        raise InvalidRequest(
            BAD_PARAMETERS,
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
        )
    return key


def decide(request: ChargeRequest, failure_rate: float, rng: random.Random) -> Answer:
    """Charges or declines; declines happen at `failure_rate`, to exercise the payer's retries."""
    if rng.random() < failure_rate:
        return Answer(402, {"id": request.id, "error": "Payment declined"})
    return Answer(200, {"id": request.id, "transactionId": str(uuid.uuid4())})
