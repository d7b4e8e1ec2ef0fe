"""render_table and render_text_table draw exactly what tabulate draws, fast path or not."""

from __future__ import annotations

import random

import pytest
from tabulate import tabulate

from mlpipe.cli import report
from mlpipe.cli.report import print_table, render_table, render_text_table

# Cells a table of `ml` may hold, and the ones that decide how tabulate types a column:
# number-like text ("12", "1,000", "nan", "True", ""), padded or multi-line text, non-ASCII,
# and values that are not strings at all.
WORDS = ["a", "job", "ran", "cached", "train-model", "x_y", "s3://b/k", "a b", "-", "(none)", "0.5s", "1.2.3",
         "v1", "e5", "info", "Nancy", "abc123", "#1", "a,b", "12abc", "$5"]
NUMBER_LIKE = ["", "0", "7", "-3", "+1", "12", "007", "1.5", ".5", "-0.25", "1e5", "1E-3", "1,000", "1,0000",
               "1_000", "nan", "NaN", "inf", "-inf", "Infinity", "True", "False", "0x10", "1e23456"]
AWKWARD = [" padded", "padded ", "two\nlines", "tab\there", "héllo", "日本", "\x1b[1mbold\x1b[0m", "a\x00b"]
OTHER = [None, True, False, 1.5, -2.0, float("nan"), 10**20, b"bytes", 3 + 0j]


def random_cell(rng: random.Random, column_kind: str, plain: bool):
    """A cell for a column that is mostly ints or mostly text; now and then (unless `plain`) something else."""
    roll = rng.random() * (0.85 if plain else 1)
    if column_kind == "int" and roll < 0.9:
        return rng.choice([0, 1, -1, 42, 10**6, -(10**9), rng.randint(-10**12, 10**12)])
    if roll < 0.55:
        return rng.choice(WORDS) + (str(rng.randint(0, 999)) if rng.random() < 0.3 else "")
    if roll < 0.85:
        return rng.choice(NUMBER_LIKE)
    if roll < 0.93:
        return rng.choice(AWKWARD)
    return rng.choice(OTHER)


def random_table(rng: random.Random) -> tuple[list[list], list[str]]:
    width = rng.randint(1, 5)
    headers = [rng.choice(WORDS + ["job", "result", "time", "final outputs", "", "1", "nan", "héllo", " x"])
               for _ in range(width)]
    kinds = [rng.choice(["int", "text", "text"]) for _ in range(width)]
    plain = rng.random() < 0.5
    rows = [[random_cell(rng, kind, plain) for kind in kinds] for _ in range(rng.randint(1, 6))]
    if rng.random() < 0.05:  # a ragged row: tabulate pads it
        rows[0] = rows[0][:-1] or [1, 2]
    return rows, headers


NUMBER_ALPHABET = "0123456789.,eE+-_ infaINFTrueFlsx"  # the pieces tabulate's number parsing looks at


def random_number_like_table(rng: random.Random) -> tuple[list[list], list[str]]:
    """Short strings made of number pieces ("1e", "+.5", "1,00", "inF", "Tru"), some ints."""
    def word() -> str:
        return "".join(rng.choice(NUMBER_ALPHABET) for _ in range(rng.randint(0, 5)))

    width = rng.randint(1, 3)
    rows = [[rng.randint(-999, 999) if rng.random() < 0.2 else word() for _ in range(width)]
            for _ in range(rng.randint(1, 4))]
    return rows, [word() for _ in range(width)]


TABLES = ([random_table(random.Random(seed)) for seed in range(3000)]
          + [random_number_like_table(random.Random(seed)) for seed in range(3000)])


def test_render_table_equals_tabulate_simple_for_generated_tables() -> None:
    drawn_here, tables = 0, len(TABLES)
    for rows, headers in TABLES:
        expected = tabulate(rows, headers=headers, tablefmt="simple")
        assert render_table(rows, headers) == expected, (rows, headers)
        drawn_here += report._simple_table(rows, headers) is not None
    # the comparison means something only if the fast path drew a good share of the tables
    assert drawn_here > tables // 4, f"{drawn_here} of {tables}"


def test_render_text_table_equals_tabulate_without_number_parsing() -> None:
    for rows, headers in [*TABLES, ([], ["job", "status"])]:
        cells = [[c if isinstance(c, str) else str(c) for c in row] for row in rows]
        expected = tabulate(cells, headers=headers, tablefmt="simple", disable_numparse=True)
        assert render_text_table(cells, headers) == expected, (cells, headers)


@pytest.mark.parametrize(("rows", "headers"), [
    ([["a", 1], ["bb", 22]], ["job", "n"]),                                  # text left, ints right
    ([["train", "ran", "1.2s", "/cache/ab/ab12"]], ["job", "result", "time", "final outputs"]),
    ([["12", "x"], ["nan", "y"], ["run", "1,000"]], ["k", "v"]),            # number-like text among text
    ([["looooooong", 7]], ["h", "width"]),                                   # a cell wider than its header
])
def test_tables_of_ml_commands_are_drawn_here_as_tabulate_draws_them(rows, headers) -> None:
    assert report._simple_table(rows, headers) is not None
    assert render_table(rows, headers) == tabulate(rows, headers=headers, tablefmt="simple")


@pytest.mark.parametrize(("rows", "headers"), [
    ([["1"], ["2.5"]], ["only numbers as text"]),  # tabulate right-aligns these as numbers
    ([["a"], [None]], ["h"]),
    ([[True], [False]], ["flag"]),
    ([[1.5], [2]], ["x"]),
    ([["two\nlines"]], ["h"]),
    ([["héllo"]], ["h"]),
    ([["a"]], ["multi\nheader"]),
    ([["a", "b"], ["c"]], ["h1", "h2"]),
])
def test_other_tables_are_left_to_tabulate(rows, headers) -> None:
    assert report._simple_table(rows, headers) is None
    assert render_table(rows, headers) == tabulate(rows, headers=headers, tablefmt="simple")


def test_print_table_says_none_for_no_rows(capsys: pytest.CaptureFixture[str]) -> None:
    print_table([], ["job"])
    print_table(iter([["a", 1]]), ["job", "n"])
    assert capsys.readouterr().out == "(none)\n" + tabulate([["a", 1]], headers=["job", "n"]) + "\n"
