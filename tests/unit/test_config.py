"""Configuration comes from the environment, with defaults that work on a laptop."""

import pytest

from invoice_app import config as invoice_config
from payment_provider import config as provider_config
from servicekit.settings import ConfigError


def test_defaults_work_with_nothing_set() -> None:
    invoice = invoice_config.load({})
    provider = provider_config.load({})
    assert invoice.server.port == 8081
    assert provider.server.port == 8082
    assert invoice.database.url.startswith("sqlite:///")
    assert invoice.payment_provider_url == "http://127.0.0.1:8082"
    assert provider.failure_rate == 0.0
    assert provider.token == ""


def test_provider_url_trailing_slash_is_dropped() -> None:
    loaded = invoice_config.load({"PAYMENT_PROVIDER_URL": "http://pp.payments:8082/"})
    assert loaded.payment_provider_url == "http://pp.payments:8082"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "http"}, "PORT must be an integer"),
        ({"PORT": "0"}, "PORT must be >= 1"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL must be a logging level"),
        ({"PAYMENT_PROVIDER_URL": "pp:8082"}, "PAYMENT_PROVIDER_URL must be an http(s)"),
        ({"PAY_CONCURRENCY": "0"}, "PAY_CONCURRENCY must be >= 1"),
        ({"PAYMENT_TIMEOUT_SECONDS": "soon"}, "PAYMENT_TIMEOUT_SECONDS must be a number"),
    ],
)
def test_bad_invoice_app_settings_name_the_variable(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        invoice_config.load(env)


@pytest.mark.parametrize("rate", ["-0.1", "1.5", "nan", "half"])
def test_failure_rate_must_be_a_probability(rate: str) -> None:
    with pytest.raises(ConfigError, match="FAILURE_RATE"):
        provider_config.load({"FAILURE_RATE": rate})
