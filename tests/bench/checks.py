"""What every benchmark run must show before its figure is printed: the work was done, and
done right. A figure from a run that failed, double-charged or answered errors is not a figure."""

import re
from collections import Counter
from collections.abc import Callable

from tests.support import Reply, http


class BenchFailure(AssertionError):
    """A run whose result is wrong: the bench stops, and prints no figures."""


def check(holds: bool, message: str) -> None:
    if not holds:
        raise BenchFailure(message)


def check_ledger(summary: dict, charged: int, what: str) -> None:
    """The provider's /payments/summary after `charged` charges: each one exactly once."""
    check(
        not summary["chargedTwice"],
        f"{what}: the provider charged payment ids twice: {summary['chargedTwice'][:10]}",
    )
    check(
        summary["charged"] == charged,
        f"{what}: the provider's ledger holds {summary['charged']} charges, expected {charged}",
    )


def check_pay_report(reply: Reply, count: int, what: str) -> None:
    """POST /invoices/pay's answer: 200, every invoice paid, none left, the run completed."""
    status, body = reply.status, reply.body
    check(status == 200, f"{what}: POST /invoices/pay answered {status}: {body}")
    check(
        body["paidCount"] == count and body["unpaidCount"] == 0 and body["stopped"] == "complete",
        f"{what}: the pay run paid {body['paidCount']} of {count}, left {body['unpaidCount']}"
        f" unpaid, stopped: {body['stopped']} (sample: {body['unpaid'][:3]})",
    )


def check_all_paid(
    list_page: Callable[[str], Reply], what: str, *, after: str = "", prefix: str = ""
) -> int:
    """Walks GET /invoices a page at a time from the cursor `after` (`list_page(after)` returns
    one page's reply) over the invoices whose ids start with `prefix`, and checks that each
    says it is paid; returns how many there are."""
    total, unpaid = 0, []
    while True:
        reply = list_page(after)
        check(reply.status == 200, f"{what}: GET /invoices answered {reply.status}")
        page = [i for i in reply.body if i["InvoiceId"].startswith(prefix)]
        total += len(page)
        unpaid += [i["InvoiceId"] for i in page if not i["IsPaid"]]
        if not page or len(page) < len(reply.body):
            break
        after = page[-1]["InvoiceId"]
    check(not unpaid, f"{what}: {len(unpaid)} invoices still unpaid, e.g. {unpaid[:5]}")
    return total


def provider_statuses(metrics_url: str) -> Counter[str]:
    """How payment-provider answered POST /payments/pay, by status, from its own metrics: a
    pay run retries 5xx and transport errors, so its report alone would hide them."""
    return statuses_in(http("GET", f"{metrics_url}/metrics").body)


def statuses_in(metrics: str) -> Counter[str]:
    """POST /payments/pay's answers by status, from one payment-provider's /metrics text."""
    found = re.findall(
        r'^http_requests_total\{method="POST",route="/payments/pay",status="(\d+)"\} (\S+)$',
        metrics,
        re.MULTILINE,
    )
    return Counter({status: float(value) for status, value in found})


def check_only_200s(statuses: dict[str, float], count: int, what: str) -> None:
    errors = {status: n for status, n in statuses.items() if status != "200" and n}
    check(not errors, f"{what}: payment-provider answered non-200s: {errors}")
    check(
        statuses.get("200", 0) == count,
        f"{what}: payment-provider answered {statuses.get('200', 0)} 200s, expected {count}",
    )
