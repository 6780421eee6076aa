"""The pay floors' client: COUNT charges straight at payment-provider, CONCURRENCY workers each
holding one persistent (keep-alive) connection, with the payload, headers and idempotency keys
invoice-app sends, so the provider writes the same ledger rows a pay run makes it write.

Standard library only: the cluster floor runs this file inside an invoice-app pod (`python3 -c`
through kubectl exec), where the provider's URL, its token and PAY_CONCURRENCY are invoice-app's
own environment. Prints one JSON line: the statuses seen, how many 200s confirmed the payment
they were asked for, and the seconds from the first request to the last answer.
"""

import argparse
import http.client
import itertools
import json
import os
import threading
import time
import urllib.parse
from collections import Counter
from decimal import Decimal

PAY_PATH = "/payments/pay"
# The seeded customers' currencies, in the order `invoice_app seed` cycles through them.
CURRENCIES = ("EUR", "GBP", "DKK")


def charge_body(payment_id: str, n: int) -> bytes:
    """Shaped as invoice-app's charge, with `seed`'s amounts (1.00 to 99.99); a Decimal goes
    out as its float, as servicekit's encoder writes it."""
    amount = float(Decimal(100 + n % 9900) / 100)
    currency = CURRENCIES[n % len(CURRENCIES)]
    body = {"id": payment_id, "value": amount, "currency": currency}
    return json.dumps(body, separators=(",", ":")).encode()


def run(base_url: str, token: str, count: int, concurrency: int, prefix: str) -> dict:
    parts = urllib.parse.urlsplit(base_url)
    path = parts.path.rstrip("/").removesuffix(PAY_PATH) + PAY_PATH
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    numbers = itertools.count()
    statuses: Counter[str] = Counter()
    confirmed = [0]
    lock = threading.Lock()

    def worker() -> None:
        # One connection per worker, reused for every charge (http.client reconnects by
        # itself should the server close it); as invoice-app's pool of PAY_CONCURRENCY.
        connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
        seen: Counter[str] = Counter()
        good = 0
        while (n := next(numbers)) < count:
            payment_id = f"{prefix}-{n:06d}"
            key = {"Idempotency-Key": f"invoice-{payment_id}-attempt-0"}
            try:
                connection.request("POST", path, charge_body(payment_id, n), headers | key)
                response = connection.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as error:
                seen[type(error).__name__] += 1
                connection.close()
                continue
            seen[str(response.status)] += 1
            # What invoice-app requires before it marks an invoice paid.
            answer = json.loads(raw) if response.status == 200 else {}
            good += answer.get("id") == payment_id and bool(answer.get("transactionId"))
        connection.close()
        with lock:
            statuses.update(seen)
            confirmed[0] += good

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "charges": count,
        "concurrency": concurrency,
        "statuses": dict(statuses),
        "confirmed": confirmed[0],
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("count", type=int)
    parser.add_argument("prefix", help="payment ids are PREFIX-000000 and on: new ones per run")
    parser.add_argument(
        "--concurrency", type=int, default=int(os.environ.get("PAY_CONCURRENCY", "8"))
    )
    parser.add_argument(
        "--url", default=os.environ.get("PAYMENT_PROVIDER_URL", "http://127.0.0.1:8082")
    )
    args = parser.parse_args()
    token = os.environ.get("PAYMENT_PROVIDER_TOKEN", "")
    print(json.dumps(run(args.url, token, args.count, args.concurrency, args.prefix)))


if __name__ == "__main__":
    main()
