"""The payment provider's client: POST {base}/payments/pay with an idempotency key, retrying
transport errors and 5xx with capped exponential backoff (safe, because of the key)."""

import logging

import requests
from requests.adapters import HTTPAdapter
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from invoice_app.config import PAY_PATH
from invoice_app.domain import ChargeResult, Invoice, Outcome
from servicekit.web import to_json

log = logging.getLogger("payments")


class CappedRetry(Retry):
    """urllib3's Retry obeys a Retry-After of up to six hours; a pay run has a deadline, so
    the wait is capped at the backoff maximum like every other wait between tries."""

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, self.backoff_max)


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
        self.url = f"{base_url}{PAY_PATH}"
        self.timeout = timeout_seconds
        retry = CappedRetry(
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
            # The error names the provider's internal host and port: the log keeps it, the
            # pay report (which public callers read) does not.
            log.warning("charge outcome unknown: %s", error, extra={"invoice": invoice.id})
            return ChargeResult(Outcome.UNKNOWN, f"payment provider unreachable ({_kind(error)})")
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


def _kind(error: requests.RequestException) -> str:
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    return "request failed"
