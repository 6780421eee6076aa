"""The payment provider's client: POST {base}/payments/pay with an idempotency key, retrying
transport errors and 5xx with capped exponential backoff (safe, because of the key)."""

import logging

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from invoice_app.domain import ChargeResult, Invoice, Outcome
from servicekit.web import to_json

log = logging.getLogger("payments")


class PaymentProviderClient:
    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        timeout_seconds: float,
        max_retries: int,
        backoff_seconds: float,
        backoff_max_seconds: float,
        pool_size: int,
    ) -> None:
        self.url = f"{base_url}/payments/pay"
        self.timeout = timeout_seconds
        retry = Retry(
            total=max_retries,
            connect=max_retries,
            read=max_retries,
            status=max_retries,
            other=0,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=None,  # POST too: the idempotency key makes a repeat harmless
            backoff_factor=backoff_seconds,
            backoff_max=backoff_max_seconds,
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self.session = requests.Session()
        self.session.mount(base_url, HTTPAdapter(max_retries=retry, pool_maxsize=pool_size))
        self.session.headers["Content-Type"] = "application/json"
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def charge(self, invoice: Invoice) -> ChargeResult:
        body = {"id": invoice.id, "value": invoice.amount, "currency": invoice.currency}
        try:
            response = self.session.post(
                self.url,
                data=to_json(body),
                headers={"Idempotency-Key": invoice.idempotency_key},
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            log.warning("charge outcome unknown: %s", error, extra={"invoice": invoice.id})
            return ChargeResult(Outcome.UNKNOWN, f"payment provider unreachable: {error}")
        return interpret(invoice, response.status_code, _json_or_none(response))


def interpret(invoice: Invoice, status: int, body: object) -> ChargeResult:
    """Maps the provider's answer to an outcome. Only a 200 that names this invoice and a
    transaction counts as paid: the original service trusted any answer, and paid on errors."""
    detail = body.get("error", "") if isinstance(body, dict) else ""
    if status == 200:
        if (
            isinstance(body, dict)
            and body.get("id") == invoice.id
            and isinstance(body.get("transactionId"), str)
            and body["transactionId"]
        ):
            return ChargeResult(Outcome.CONFIRMED, transaction_id=body["transactionId"])
        return ChargeResult(Outcome.UNKNOWN, "payment provider sent 200 without a confirmation")
    if status == 402:
        return ChargeResult(Outcome.DECLINED, f"declined by the payment provider: {detail}")
    if status in (400, 401, 403, 409, 422):
        return ChargeResult(Outcome.REJECTED, f"payment provider refused ({status}): {detail}")
    return ChargeResult(Outcome.UNKNOWN, f"payment provider answered {status}: {detail}")


def _json_or_none(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None
