"""payment-provider's request rules and decisions."""

import random
from decimal import Decimal

import pytest

from payment_provider.domain import ChargeRequest, InvalidRequest, decide, parse, validate_key


def test_a_valid_request_is_parsed_exactly() -> None:
    request = parse({"id": "I1", "value": Decimal("12.15"), "currency": "eur"})
    assert request == ChargeRequest("I1", Decimal("12.15"), "EUR")


def test_fingerprint_depends_on_content() -> None:
    a = ChargeRequest("I1", Decimal("1.00"), "EUR")
    assert a.fingerprint == ChargeRequest("I1", Decimal("1.00"), "EUR").fingerprint
    assert a.fingerprint != ChargeRequest("I1", Decimal("1.01"), "EUR").fingerprint


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "\xd7\xa9"])
def test_bad_idempotency_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidRequest, match="Idempotency-Key"):
        validate_key(key)


def test_failure_rate_zero_never_declines_and_one_always_does() -> None:
    request = ChargeRequest("I1", Decimal(1), "EUR")
    rng = random.Random(7)
    assert {decide(request, 0.0, rng).status for _ in range(200)} == {200}
    assert {decide(request, 1.0, rng).status for _ in range(200)} == {402}


def test_failure_rate_half_declines_about_half() -> None:
    request = ChargeRequest("I1", Decimal(1), "EUR")
    rng = random.Random(11)
    declines = sum(decide(request, 0.5, rng).status == 402 for _ in range(2000))
    assert 850 < declines < 1150


def test_each_confirmed_charge_gets_its_own_transaction_id() -> None:
    request = ChargeRequest("I1", Decimal(1), "EUR")
    ids = {decide(request, 0.0, random.Random()).body["transactionId"] for _ in range(50)}
    assert len(ids) == 50
