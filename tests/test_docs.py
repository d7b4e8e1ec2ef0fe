"""README.md and docs/*.md: every relative link resolves, and the quick start keeps its two commands.

The README is a quick start whose reference lives in docs/; a page renamed or a section retitled
would leave links that go nowhere, which nobody notices by reading one page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^(```|~~~)")
_LINK = re.compile(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _prose(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `](` or `#` in code is not a link or heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchors(page: Path) -> set[str]:
    """The heading anchors GitHub renders for a page: lower case, punctuation dropped, - for space."""
    seen: dict[str, int] = {}
    for line in _prose(page.read_text(encoding="utf-8")):
        match = _HEADING.match(line)
        if match:
            slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            if count:
                seen[f"{slug}-{count}"] = 1
    return set(seen)


def broken_links(page: Path, root: Path) -> list[str]:
    """Each relative link of `page` whose file (inside `root`) or heading anchor does not exist."""
    problems = []
    for target in _LINK.findall("\n".join(_prose(page.read_text(encoding="utf-8")))):
        if _SCHEME.match(target):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.is_relative_to(root.resolve()):
            problems.append(f"{target}: outside the repository")
        elif not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no heading '{anchor}' in {dest.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_every_relative_link_resolves(page):
    assert broken_links(page, REPO) == []


def test_readme_links_to_the_docs_pages():
    linked = {Path(t.partition("#")[0]).name for t in _LINK.findall((REPO / "README.md").read_text())}
    pages = {p.name for p in PAGES[1:]}
    assert pages - linked == set(), "docs pages the README does not link to"


def test_readme_quick_start_starts_with_make_demo_and_make_test():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    quick_start = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in quick_start.splitlines() if line.startswith("make ")]
    assert commands[:2] == ["make demo", "make test"]


def test_the_checker_reports_a_missing_file_an_unknown_anchor_and_an_escape(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Its `ml x` part\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#its-ml-x-part) [top](#readme) [web](https://example.com/x.md)\n"
        "[gone](docs/b.md) [bad anchor](docs/a.md#nope)\n"
        "[out](../elsewhere.md)\n```\n[in code](nowhere.md)\n```\n# README\n"
    )
    assert broken_links(page, tmp_path) == [
        "docs/b.md: no such file",
        "docs/a.md#nope: no heading 'nope' in a.md",
        "../elsewhere.md: outside the repository",
    ]
