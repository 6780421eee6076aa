"""Configuration comes from the environment, with defaults that work on a laptop."""

import pytest

from invoice_app import config as invoice_config
from payment_provider import config as provider_config
from servicekit.settings import ConfigError


def test_defaults_work_with_nothing_set() -> None:
    invoice = invoice_config.load({})
    provider = provider_config.load({"PAYMENT_PROVIDER_ALLOW_NO_TOKEN": "true"})
    assert invoice.server.port == 8081
    assert provider.server.port == 8082
    assert invoice.database.url.startswith("sqlite:///")
    assert invoice.payment_provider_url == "http://127.0.0.1:8082"
    assert provider.failure_rate == 0.0
    assert provider.token == ""


@pytest.mark.parametrize(
    "url",
    [
        "http://pp.payments:8082",
        "http://pp.payments:8082/",
        "http://pp.payments:8082/payments/pay",
        "http://pp.payments:8082/payments/pay/",
    ],
)
def test_provider_url_is_accepted_as_a_base_or_the_full_endpoint(url: str) -> None:
    loaded = invoice_config.load({"PAYMENT_PROVIDER_URL": url})
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
        ({"PAYMENT_TIMEOUT_SECONDS": "0"}, "PAYMENT_TIMEOUT_SECONDS must be a finite number > 0"),
        ({"PAYMENT_TIMEOUT_SECONDS": "inf"}, "PAYMENT_TIMEOUT_SECONDS must be a finite number"),
        ({"PAYMENT_BACKOFF_MAX_SECONDS": "inf"}, "PAYMENT_BACKOFF_MAX_SECONDS must be a finite"),
        ({"DATABASE_WAIT_SECONDS": "-inf"}, "DATABASE_WAIT_SECONDS must be a finite"),
        ({"DATABASE_TIMEOUT_SECONDS": "0"}, "DATABASE_TIMEOUT_SECONDS must be a finite number > 0"),
        (
            {"THREADS": "8", "DATABASE_POOL_SIZE": "4"},
            "DATABASE_POOL_SIZE must be at least THREADS",
        ),
    ],
)
def test_bad_invoice_app_settings_name_the_variable(env: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        invoice_config.load(env)


@pytest.mark.parametrize("rate", ["-0.1", "1.5", "nan", "half"])
def test_failure_rate_must_be_a_probability(rate: str) -> None:
    with pytest.raises(ConfigError, match="FAILURE_RATE"):
        provider_config.load({"FAILURE_RATE": rate, "PAYMENT_PROVIDER_TOKEN": "t"})


def test_pool_defaults_to_the_thread_count() -> None:
    assert invoice_config.load({"THREADS": "12"}).database.pool_size == 12


def test_a_database_url_with_a_bad_scheme_is_refused_without_its_password() -> None:
    with pytest.raises(ConfigError) as raised:
        provider_config.load({"DATABASE_URL": "mysql://app:s3cret-pw@db:3306/x"})
    assert "DATABASE_URL must start with" in str(raised.value)
    assert "s3cret" not in str(raised.value)


def test_settings_never_print_the_database_password() -> None:
    loaded = invoice_config.load({"DATABASE_URL": "postgresql://app:s3cret-pw@db:5432/x"})
    assert "s3cret" not in repr(loaded)
    assert "app:***@db:5432" in repr(loaded)


def test_provider_refuses_to_run_without_a_token_unless_told_to() -> None:
    with pytest.raises(ConfigError, match="PAYMENT_PROVIDER_TOKEN is empty"):
        provider_config.load({})
    with pytest.raises(ConfigError, match="PAYMENT_PROVIDER_ALLOW_NO_TOKEN must be true or false"):
        provider_config.load({"PAYMENT_PROVIDER_ALLOW_NO_TOKEN": "maybe"})
    assert provider_config.load({"PAYMENT_PROVIDER_TOKEN": "t"}).token == "t"


def test_tokens_never_appear_in_the_settings_repr() -> None:
    loaded = invoice_config.load(
        {"PAYMENT_PROVIDER_TOKEN": "pp-s3cret", "INVOICE_APP_API_TOKEN": "api-s3cret"}
    )
    assert "s3cret" not in repr(loaded)
    assert "s3cret" not in repr(provider_config.load({"PAYMENT_PROVIDER_TOKEN": "pp-s3cret"}))


def test_the_lease_outlasts_the_deadline_and_the_longest_charge() -> None:
    limits = invoice_config.load(
        {
            "PAY_RUN_DEADLINE_SECONDS": "30",
            "PAYMENT_TIMEOUT_SECONDS": "2",
            "PAYMENT_MAX_RETRIES": "1",
            "PAYMENT_BACKOFF_MAX_SECONDS": "1",
        }
    ).pay_limits
    assert limits.lease_seconds > 30 + 2 * 2 * 2 + 1
