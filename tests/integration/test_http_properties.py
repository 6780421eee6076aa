"""Property-based tests of the HTTP layer (hypothesis), beside schemathesis's schema-driven
fuzzing: arbitrary methods, raw percent-encoded paths and queries, headers and bodies, sent to
both real services. Whatever arrives, the answer is never a 5xx, and every error is JSON."""

import json
import urllib.parse
from collections.abc import Iterator
from http.client import HTTPConnection

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import PostgresServer, ServiceProcess

TOKEN = "property-token"
PROPERTIES = settings(
    max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
ORIGINAL_400_TEXTS = {
    "empty body request",
    "failed to process payment request parameters",
    "could not retrieve payment id",
    "could not retrieve payment value",
    "could not retrieve payment currency",
}


@pytest.fixture(scope="module")
def services(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("properties")
    provider = ServiceProcess(
        "payment_provider",
        {
            "DATABASE_URL": postgres.create_database("prop_provider"),
            "PAYMENT_PROVIDER_TOKEN": TOKEN,
        },
        logs / "payment_provider.log",
    ).start()
    app = ServiceProcess(
        "invoice_app",
        {
            "DATABASE_URL": postgres.create_database("prop_invoices"),
            "PAYMENT_PROVIDER_URL": provider.url,
            "PAYMENT_PROVIDER_TOKEN": TOKEN,
        },
        logs / "invoice_app.log",
    ).start()
    yield {"invoice_app": app, "payment_provider": provider}
    for service in (app, provider):
        service.kill()
    for log in logs.glob("*.log"):
        assert "Traceback" not in log.read_text(), log


def send(
    service: ServiceProcess, method: str, target: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str, bytes]:
    connection = HTTPConnection("127.0.0.1", service.port, timeout=60)
    try:
        connection.putrequest(method, target, skip_accept_encoding=True)
        for name, value in {**headers, "Content-Length": str(len(body))}.items():
            connection.putheader(name, value.encode("latin-1"))
        connection.endheaders(body)
        reply = connection.getresponse()
        return reply.status, reply.getheader("Content-Type") or "", reply.read()
    finally:
        connection.close()


def assert_no_5xx_and_json_errors(status: int, content_type: str, raw: bytes) -> None:
    assert status < 500, raw[:300]
    if status >= 400:
        assert content_type.startswith("application/json"), (status, content_type, raw[:300])
        assert isinstance(json.loads(raw)["error"], str)


# Anything a client may put in a path segment or a query value, byte for byte.
raw_text = st.binary(max_size=40).map(lambda b: urllib.parse.quote(b, safe=""))
segments = st.one_of(
    st.sampled_from(
        [
            "invoices",
            "rest",
            "v1",
            "Invoices",
            "customers",
            "pay",
            "I1",
            "1",
            "0",
            "-1",
            "%C2%B2",
            "payments",
            "summary",
            "healthz",
            "readyz",
            "metrics",
            "%00",
            "..",
            "",
        ]
    ),
    raw_text,
)
ROUTES = [
    "/invoices", "/invoices/I1", "/invoices/pay", "/rest/v1/invoices", "/rest/v1/Invoices/1/",
    "/rest/v1/customers", "/rest/v1/customers/1", "/payments", "/payments/summary",
    "/payments/pay", "/healthz", "/readyz",
]  # fmt: skip
paths = st.one_of(
    st.sampled_from(ROUTES),
    st.lists(segments, min_size=1, max_size=5).map(lambda parts: "/" + "/".join(parts)),
)
query_values = st.one_of(
    st.sampled_from(["1", "0", "3", "1000", "%B2", "%C2%B2", "%C3%A9", "I1", "%FF", "-1"]),
    raw_text,
)
queries = st.lists(
    st.tuples(st.sampled_from(["limit", "after", "id", "x"]) | raw_text, query_values), max_size=3
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FOO"])
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=60
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.one_of(header_text, st.just(f"Bearer {TOKEN}")),
        "Idempotency-Key": header_text,
        "Content-Type": st.sampled_from(["application/json", "text/plain", "", "application/x"]),
    },
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
charge_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=10), st.integers(), st.none()),
        "value": st.one_of(
            st.integers(-5, 10**12), st.decimals(allow_nan=True, places=3).map(str), st.none()
        ),
        "currency": st.one_of(st.text(max_size=4), st.sampled_from(["EUR", "eur", "ÉUR"])),
    },
).map(lambda d: json.dumps(d).replace('"value": "', '"value": ').replace('", "cur', ', "cur'))
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    charge_like.map(str.encode),
    st.integers(1, 20_000).map(lambda n: b"[" * n),
)


@PROPERTIES
@given(
    service=st.sampled_from(["invoice_app", "payment_provider"]),
    method=methods,
    path=paths,
    query=queries,
    body=bodies,
    header_values=headers,
)
def test_no_request_gets_a_5xx(
    services: dict,
    service: str,
    method: str,
    path: str,
    query: str,
    body: bytes,
    header_values: dict,
) -> None:
    target = f"{path}?{query}" if query else path
    status, content_type, raw = send(services[service], method, target, body, header_values)
    if method != "HEAD":
        assert_no_5xx_and_json_errors(status, content_type, raw)
    else:
        assert status < 500


@PROPERTIES
@given(body=bodies, key=st.one_of(st.none(), header_text))
def test_every_charge_request_gets_a_definite_answer_with_the_original_texts(
    services: dict, body: bytes, key: str | None
) -> None:
    header_values = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    if key is not None:
        header_values["Idempotency-Key"] = key
    status, content_type, raw = send(
        services["payment_provider"], "POST", "/payments/pay", body, header_values
    )
    assert_no_5xx_and_json_errors(status, content_type, raw)
    assert status in (200, 400, 402, 409)
    answer = json.loads(raw)
    if status == 400 and not (answer.get("detail") or "").startswith("Idempotency-Key"):
        assert answer["error"] in ORIGINAL_400_TEXTS, answer


READS = {
    "invoice_app": ["/invoices", "/rest/v1/invoices", "/rest/v1/customers", "/invoices/I1"],
    "payment_provider": ["/payments", "/payments/summary"],
}


@settings(PROPERTIES, max_examples=400)
@given(
    service=st.sampled_from(sorted(READS)),
    route=st.integers(0, 3),
    pairs=st.dictionaries(st.sampled_from(["limit", "after", "id"]), query_values, max_size=3).map(
        lambda d: list(d.items())
    ),
)
def test_reads_with_any_query_get_an_answer_or_a_400(
    services: dict, service: str, route: int, pairs: list
) -> None:
    path = READS[service][route % len(READS[service])]
    query = "&".join(f"{key}={value}" for key, value in pairs)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status, content_type, raw = send(services[service], "GET", f"{path}?{query}", b"", headers)
    assert_no_5xx_and_json_errors(status, content_type, raw)
    assert status in (200, 400, 404)
