#!/usr/bin/env python3
"""Checks that every relative link in the documentation resolves, so a moved or renamed file
cannot leave a reader at a dead end.

    scripts/check-links.py          README.md, docs/*.md and roles/*/README.md
    scripts/check-links.py FILE...  only those files

A link target must be a file or directory in the repository that git does not ignore (a link
into out/ or .venv/ works here and nowhere else). A #fragment must name a heading of the target
Markdown file, spelled as GitHub spells heading anchors. Links with a scheme (https:, mailto:)
are left alone: this machine cannot reach them. Exit 1 lists every broken link.
"""

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

REPO = Path(__file__).resolve().parent.parent
DEFAULT_FILES = ["README.md", "docs/*.md", "roles/*/README.md"]
# [text](target "title"), [text](<target>), and reference definitions "[label]: target".
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every link outside fenced code and code spans."""
    found, fence = [], ""
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.lstrip()
        marker = re.match(r"(`{3,}|~{3,})", stripped)
        if marker and (not fence or stripped.startswith(fence)):
            fence = "" if fence else marker.group(1)
            continue
        if fence:
            continue
        # A code span is text, not a link; its brackets must not pair with anything outside it.
        plain = CODE_SPAN.sub(lambda m: "x" * len(m.group(0)), line)
        for match in INLINE.finditer(plain):
            found.append((number, match.group(1).strip("<>")))
        if reference := REFERENCE.match(plain):
            found.append((number, reference.group(1).strip("<>")))
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text without markup, lower case, punctuation dropped,
    spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result, fence = set(), False
    for line in path.read_text().split("\n"):
        if re.match(r"\s*(```|~~~)", line):
            fence = not fence
            continue
        heading = re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if fence or not heading:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def ignored(paths: list[Path]) -> set[Path]:
    """The paths git ignores (none when this is not a git checkout)."""
    if not paths:
        return set()
    try:
        # Tracked files are never reported, whatever .gitignore says: a clone has them.
        result = subprocess.run(
            ["git", "check-ignore", "--stdin"],  # noqa: S607 - git from PATH, as CI has it
            cwd=REPO,
            input="\n".join(str(p.relative_to(REPO)) for p in paths),
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        return set()
    return {(REPO / line).resolve() for line in result.stdout.splitlines()}


def problems(doc: Path) -> list[str]:
    out, targets = [], []
    for number, target in links(doc.read_text()):
        if SCHEME.match(target):
            continue
        where = f"{doc.relative_to(REPO)}:{number}: {target}"
        raw_path, _, fragment = target.partition("#")
        raw_path = unquote(raw_path)
        if not raw_path:
            resolved = doc
        elif raw_path.startswith("/"):
            resolved = REPO / raw_path.lstrip("/")
        else:
            resolved = doc.parent / raw_path
        resolved = resolved.resolve()
        if not resolved.is_relative_to(REPO):
            out.append(f"{where}: points outside the repository")
        elif not resolved.exists():
            out.append(f"{where}: no such file or directory")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            out.append(f"{where}: no heading #{fragment} in {resolved.relative_to(REPO)}")
        else:
            targets.append((where, resolved))
    skip = ignored([t for _, t in targets])
    out += [
        f"{where}: ignored by git, so missing from every clone" for where, t in targets if t in skip
    ]
    return out


def main() -> int:
    if sys.argv[1:]:
        docs = sorted({Path(name).resolve() for name in sys.argv[1:]})
    else:
        docs = sorted({p.resolve() for pattern in DEFAULT_FILES for p in REPO.glob(pattern)})
    broken = [problem for doc in docs for problem in problems(doc)]
    for problem in broken:
        print(problem)
    if broken:
        print(f"check-links: {len(broken)} broken link(s) in {len(docs)} file(s)", file=sys.stderr)
        return 1
    print(f"check-links: every relative link in {len(docs)} file(s) resolves")
    return 0


if __name__ == "__main__":
    sys.exit(main())
