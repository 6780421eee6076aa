"""`python -m payment_provider` serves on $PORT."""

from payment_provider import config
from payment_provider.app import build
from servicekit import runtime
from servicekit.server import serve


def main() -> None:
    settings = runtime.configure("payment-provider", config.load)
    service = build(settings)
    service.ledger.migrate(wait_seconds=settings.database.wait_seconds)
    serve(service.wsgi, settings.server, service.lifecycle)


if __name__ == "__main__":
    main()
