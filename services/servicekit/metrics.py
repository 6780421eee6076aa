"""Prometheus metrics, one registry per app so that several apps can live in one process
(the tests start many)."""

import logging
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("metrics")


class GaugesAtScrape(Collector):
    """Gauges read when Prometheus scrapes, e.g. from the database. A failed read leaves them
    out of that scrape instead of failing the whole scrape."""

    def __init__(
        self, read: Callable[[], Mapping[str, float]], help_texts: Mapping[str, str]
    ) -> None:
        self._read = read
        self._help = help_texts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        try:
            values = self._read()
        except Exception as error:  # a scrape must not fail because the database did
            log.warning("metrics read failed: %s", error)
            return
        for name, value in values.items():
            yield GaugeMetricFamily(name, self._help[name], value=value)

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # values come from outside: never read them at registration


class HttpMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        # What an on-call engineer looks at first: CPU, memory, open files, GC, Python version.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        self.requests = Counter(
            "http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time spent handling a request, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            "Requests being handled right now.",
            registry=self.registry,
        )

    def counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        return Counter(name, documentation, labels, registry=self.registry)

    def histogram(self, name: str, documentation: str) -> Histogram:
        return Histogram(name, documentation, registry=self.registry)

    def gauges_at_scrape(
        self, read: Callable[[], Mapping[str, float]], help_texts: Mapping[str, str]
    ) -> None:
        self.registry.register(GaugesAtScrape(read, help_texts))

    def render(self) -> bytes:
        return generate_latest(self.registry)
