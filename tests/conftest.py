"""Fixtures shared by every tier."""

import time
from collections.abc import Iterator

import pytest

from tests.support import PostgresServer, running_postgres


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL from the distribution's packages, private to this test session."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def database_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> str:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"t_{int(time.time() * 1000) % 10**9}_{request.node.name[:30]}".lower()
    return postgres.create_database("".join(c if c.isalnum() else "_" for c in name))
