"""`python -m payment_provider` serves on $PORT."""

import logging

from payment_provider import config
from payment_provider.app import build
from servicekit import runtime
from servicekit.server import serve


def main() -> None:
    settings = runtime.configure("payment-provider", config.load)
    if not settings.token:
        logging.getLogger("payment-provider").warning(
            "PAYMENT_PROVIDER_TOKEN is empty and PAYMENT_PROVIDER_ALLOW_NO_TOKEN=true:"
            " ANYONE WHO REACHES THIS PROVIDER CAN CHARGE PAYMENTS. Local runs only."
        )
    service = build(settings)
    service.ledger.migrate(wait_seconds=settings.database.wait_seconds)
    serve(service.wsgi, settings.server, service.lifecycle, service.metrics.registry)


if __name__ == "__main__":
    main()
