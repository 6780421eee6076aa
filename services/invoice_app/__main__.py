"""`python -m invoice_app` serves on $PORT; `python -m invoice_app seed N` adds N pending
invoices (for tests and benchmarks, e.g. through `kubectl exec`)."""

import argparse
import logging
import sys

from invoice_app import config
from invoice_app.app import build
from servicekit import runtime
from servicekit.server import serve


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m invoice_app")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP API (the default)")
    seed = commands.add_parser("seed", help="add pending invoices")
    seed.add_argument("count", type=int)
    seed.add_argument("--prefix", help="invoice id prefix (default: random)")
    args = parser.parse_args(argv)
    settings = runtime.configure("invoice-app", config.load)
    service = build(settings)
    service.store.migrate(wait_seconds=settings.database.wait_seconds)
    if args.command == "seed":
        ids = service.store.seed(args.count, prefix=args.prefix)
        logging.getLogger("invoice-app").info("seeded", extra={"count": len(ids)})
        return 0
    serve(service.wsgi, settings.server, service.lifecycle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
