"""invoice-app's schema migrates a database that earlier code made, on both dialects, and the
Antaeus view's integer ids are stored: the same from every replica and after restarts."""

from pathlib import Path

import pytest

from invoice_app.store import MIGRATIONS, InvoiceStore
from servicekit.db import Database


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'old.db'}"
    return request.getfixturevalue("database_url")


def test_a_database_made_before_integer_ids_gets_them_in_id_order(url: str) -> None:
    old = Database(url)
    old.migrate("invoice-app", MIGRATIONS[:2])  # what the previous release created
    with old.transaction(write=True) as cursor:
        cursor.execute(
            "INSERT INTO invoices (id, customer_id, amount, currency) VALUES"
            " ('A9', 'C2', '1.00', 'GBP'), ('Z1', 'C3', '2.00', 'DKK')"
        )
    old.close()

    store = InvoiceStore(Database(url))
    assert store.migrate() == [v.version for v in MIGRATIONS[2:]]
    assert store.migrate() == [], "a second start migrates nothing"
    numbers = {i.id: (i.number, i.customer_number) for i in store.list_invoices()}
    assert numbers == {"A9": (1, 2), "I1": (2, 1), "I2": (3, 2), "I3": (4, 3), "Z1": (5, 3)}

    new = store.seed(2, prefix="N")
    again = InvoiceStore(Database(url))  # another replica, or the same after a restart
    assert [again.get_invoice(i).number for i in new] == [6, 7]  # type: ignore[union-attr]
    assert again.get_by_number(1).id == "A9"  # type: ignore[union-attr]
    assert [(c.id, c.number) for c in again.list_customers()] == [("C1", 1), ("C2", 2), ("C3", 3)]


def test_a_fresh_database_numbers_the_original_invoices_1_to_3(url: str) -> None:
    store = InvoiceStore(Database(url))
    store.migrate()
    assert [(i.id, i.number, i.customer_number) for i in store.list_by_number()] == [
        ("I1", 1, 1),
        ("I2", 2, 2),
        ("I3", 3, 3),
    ]
