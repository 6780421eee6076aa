"""The latest `make bench` table, written into docs/performance.md between two markers, so a
reader sees the last measured figures without running the bench. Only a run whose checks all
passed gets here (a failed check raises before any figure is printed or written)."""

from pathlib import Path

START = "<!-- bench:latest:start (written by `make bench`; edit outside these markers) -->"
END = "<!-- bench:latest:end -->"

Row = tuple[str, str, str, str]


def markdown_table(rows: list[Row], when: str, machine: str, sections: list[str]) -> str:
    lines = [
        f"Latest `make bench` run: {when}, on {machine}; sections: {', '.join(sections)}.",
        "",
        "| measure | platform | floor | ratio, goal |",
        "| --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_latest(doc: Path, table: str) -> None:
    """Replace what stands between the markers; refuse a document that lacks them, rather than
    guess where the table goes."""
    text = doc.read_text()
    before, start, rest = text.partition(START)
    _, end, after = rest.partition(END)
    if not start or not end:
        raise ValueError(f"{doc} lacks the markers {START!r} ... {END!r}")
    doc.write_text(f"{before}{START}\n{table}\n{END}{after}")
