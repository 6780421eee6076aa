"""`python -m invoice_app` serves on $PORT; `python -m invoice_app pay` runs one pay run and
prints its report (a CronJob's command: the same code path as POST /invoices/pay);
`python -m invoice_app seed N` adds N pending invoices (tests and benchmarks)."""

import argparse
import logging
import sys

from invoice_app import config
from invoice_app.app import build
from invoice_app.domain import Stop
from servicekit import runtime
from servicekit.server import serve
from servicekit.web import to_json


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m invoice_app")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (the default)")
    commands.add_parser(
        "pay",
        help="one pay run; exit 0 when it completed, 1 when its deadline or breaker stopped it",
    )
    seed = commands.add_parser("seed", help="add pending invoices")
    seed.add_argument("count", type=int)
    seed.add_argument("--prefix", help="invoice id prefix (default: random)")
    args = parser.parse_args(argv)
    settings = runtime.configure("invoice-app", config.load)
    service = build(settings)
    service.store.migrate(wait_seconds=settings.database.wait_seconds)
    if args.command == "pay":
        report = service.pay_once()
        print(to_json(report.as_json()), flush=True)
        return 0 if report.stopped is Stop.COMPLETE else 1
    if args.command == "seed":
        ids = service.store.seed(args.count, prefix=args.prefix)
        logging.getLogger("invoice-app").info("seeded", extra={"count": len(ids)})
        return 0
    serve(service.wsgi, settings.server, service.lifecycle, service.metrics.registry)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
