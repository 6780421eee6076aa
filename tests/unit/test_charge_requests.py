"""payment-provider's request rules and decisions."""

import random
from decimal import Decimal

import pytest

from payment_provider.domain import (
    BAD_PARAMETERS,
    NO_CURRENCY,
    NO_ID,
    NO_VALUE,
    ChargeRequest,
    InvalidRequest,
    decide,
    parse,
    validate_key,
)


def test_a_valid_request_is_parsed_exactly() -> None:
    request = parse({"id": "I1", "value": Decimal("12.15"), "currency": "EUR"})
    assert request == ChargeRequest("I1", Decimal("12.15"), "EUR")


def test_fingerprint_depends_on_content() -> None:
    a = ChargeRequest("I1", Decimal("1.00"), "EUR")
    assert a.fingerprint == ChargeRequest("I1", Decimal("1.00"), "EUR").fingerprint
    assert a.fingerprint != ChargeRequest("I1", Decimal("1.01"), "EUR").fingerprint


def test_fingerprint_is_canonical_in_the_amount() -> None:
    prints = {parse({"id": "I1", "value": v, "currency": "EUR"}).fingerprint for v in VALUES_OF_10}
    assert len(prints) == 1


VALUES_OF_10 = [10, Decimal("10"), Decimal("10.0"), Decimal("10.00")]


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ([1], BAD_PARAMETERS),
        ({"id": 7, "value": 5, "currency": "EUR"}, BAD_PARAMETERS),
        ({"id": "I1", "value": "5", "currency": "EUR"}, BAD_PARAMETERS),
        ({"id": "I1", "value": True, "currency": "EUR"}, BAD_PARAMETERS),
        ({"id": "I1", "value": 5, "currency": 3}, BAD_PARAMETERS),
        ({"value": 5, "currency": "EUR"}, NO_ID),
        ({"id": "", "value": 5, "currency": "EUR"}, NO_ID),
        ({"id": None, "value": 5, "currency": "EUR"}, NO_ID),
        ({"id": "I1", "currency": "EUR"}, NO_VALUE),
        ({"id": "I1", "value": 0, "currency": "EUR"}, NO_VALUE),
        ({"id": "I1", "value": Decimal("0.00"), "currency": "EUR"}, NO_VALUE),
        ({"id": "I1", "value": 5}, NO_CURRENCY),
        ({"id": "I1", "value": 5, "currency": ""}, NO_CURRENCY),
        ({"id": "I1", "value": -5, "currency": "EUR"}, BAD_PARAMETERS),
        ({"id": "I1", "value": 5, "currency": "eur"}, BAD_PARAMETERS),
        ({"id": "I1", "value": 5, "currency": "\uff25UR"}, BAD_PARAMETERS),
        ({"id": "I1", "value": 5, "currency": "ÉUR"}, BAD_PARAMETERS),
        ({"id": "I1", "value": 5, "currency": "EUR\n"}, BAD_PARAMETERS),
    ],
)
def test_bad_requests_get_the_original_providers_texts(payload: object, error: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse(payload)
    assert raised.value.message == error
    assert raised.value.detail


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there", "\xd7\xa9"])
def test_bad_idempotency_keys_are_refused(key: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        validate_key(key)
    assert "Idempotency-Key" in (raised.value.detail or "")


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
