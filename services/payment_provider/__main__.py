"""`python -m payment_provider` serves on $PORT."""

import sys

from payment_provider import config
from payment_provider.app import build
from servicekit import jsonlog
from servicekit.server import serve
from servicekit.settings import ConfigError


def main() -> int:
    try:
        settings = config.load()
    except ConfigError as error:
        print(f"payment-provider: configuration error: {error}", file=sys.stderr)
        return 2
    jsonlog.configure("payment-provider", settings.log_level)
    service = build(settings)
    service.ledger.migrate(wait_seconds=settings.database.wait_seconds)
    serve(service.wsgi, settings.server, service.lifecycle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
