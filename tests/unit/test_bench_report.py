"""The bench writes its latest table into docs/performance.md between two markers, and nowhere
else; a document without the markers is refused, not guessed at."""

from pathlib import Path

import pytest

from tests.bench import report

ROWS = [("pay 10k", "500/s", "830/s", "60% (goal >= 80%)"), ("a | b", "1 s", "", "")]


def test_the_table_replaces_only_what_stands_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text(f"# Performance\n\nbefore\n\n{report.START}\nold table\n{report.END}\n\nafter\n")
    table = report.markdown_table(ROWS, "2026-12-04T14:00:00Z", "host (x86_64, 2 CPUs)", ["pay"])
    report.write_latest(doc, table)
    report.write_latest(doc, table)  # a second run replaces the first, it does not pile up
    text = doc.read_text()
    assert text.startswith("# Performance\n\nbefore\n\n")
    assert text.endswith(f"{report.END}\n\nafter\n")
    assert "old table" not in text
    assert text.count("| pay 10k | 500/s | 830/s | 60% (goal >= 80%) |") == 1
    assert "| a \\| b | 1 s |  |  |" in text
    assert "2026-12-04T14:00:00Z, on host (x86_64, 2 CPUs); sections: pay." in text


def test_a_document_without_the_markers_is_refused(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n")
    with pytest.raises(ValueError, match="lacks the markers"):
        report.write_latest(doc, "table")
    assert doc.read_text() == "# Performance\n"


def test_the_projects_document_has_the_markers() -> None:
    text = (Path(__file__).parents[2] / "docs" / "performance.md").read_text()
    assert text.count(report.START) == 1
    assert text.count(report.END) == 1
