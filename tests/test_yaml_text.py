"""Tests for mlpipe.core.yaml_text: the same data as `yaml.safe_load`, duplicate keys refused,
errors located in the file, whichever of its two readers (events or nodes) reads the text."""

from __future__ import annotations

import random

import pytest
import yaml

from mlpipe.core import yaml_text
from mlpipe.core.errors import SpecError
from mlpipe.core.yaml_text import load_yaml_text

PLAIN = [
    "",
    "# only a comment\n",
    "42\n",
    "just text\n",
    "jobs:\n  a: {module: m/module/x, input: {data: 'raw/*.txt'}}\n  b:\n    module: m/module/y\n",
    "parameters:\n  lr: {type: float, default: 1e-3}\n  n: {type: int, default: 0x1f}\n"
    "  on: {type: bool, default: yes}\n  when: 2026-12-03\n  none: ~\n  quoted: '007'\n",
    "- 1\n- [2, 3.5, -.inf]\n- {a: null, b: 'true', c: true}\n- ''\n",
    "cmd: >\n  python train.py\n  --fast\nnote: |\n  two\n  lines\n",
    "1: int key\n2.5: float key\nnull: none key\n? plain complex-looking key\n: value\n",
    "---\nexplicit: document start\n...\n",
    "a:\n  - b:\n      - c: [[], {}]\n",
    "'<<': a quoted key, not a merge key\n",
]


@pytest.mark.parametrize("text", PLAIN)
def test_plain_yaml_reads_as_safe_load_reads_it_without_the_node_loader(
        text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = yaml.safe_load(text)
    monkeypatch.setattr(yaml_text, "_strict_loader", lambda: pytest.fail("plain YAML went to the node loader"))
    loaded = load_yaml_text(text, "f.yaml")
    assert loaded == expected and type(loaded) is type(expected)
    assert repr(loaded) == repr(expected)  # same scalar types all the way down (1 vs True vs 1.0)


BEYOND_PLAIN = [
    "base: &b {lr: 0.1, n: 2}\nrun: *b\n",
    "base: &b {lr: 0.1}\nrun:\n  <<: *b\n  n: 3\n",
    "seq: &s [1, 2]\nagain: *s\n",
    "value: &v 5\ncopy: *v\n",
    "base: &b {lr: 0.1, n: 2}\nrun:\n  <<: *b\n  lr: 3\n",
    "text: !!str 12\n",
    "tagged: !!set {a, b}\n",
    "binary: !!binary aGVsbG8=\n",
    "pairs: !!omap [{a: 1}, {b: 2}]\n",
]


@pytest.mark.parametrize("text", BEYOND_PLAIN)
def test_anchors_tags_merge_keys_and_complex_keys_read_as_safe_load_reads_them(text: str) -> None:
    assert load_yaml_text(text, "f.yaml") == yaml.safe_load(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("jobs:\n  a: 1\n  a: 2\n", "f.yaml: invalid YAML: line 3, column 3: duplicate key 'a'"),
        ("outer:\n  inner: {x: 1, x: 1}\n", "f.yaml: invalid YAML: line 2, column 17: duplicate key 'x'"),
        ("jobs: [unclosed\n", "f.yaml: invalid YAML: line 2, column 1"),
        ("a: 1\n---\nb: 2\n", "f.yaml: invalid YAML: line 2, column 1"),
        ("obj: !!python/object:os.system {}\n", "f.yaml: invalid YAML: line 1, column 6"),
        ("a: *nowhere\n", "f.yaml: invalid YAML: line 1, column 4"),
        ("? [complex, key]\n: value\n", "f.yaml: invalid YAML: line 1, column 3: found unhashable key"),
    ],
)
def test_duplicate_keys_bad_syntax_several_documents_and_python_tags_are_located_errors(
        text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text(text, "f.yaml")
    assert str(info.value).startswith(message)


def test_a_duplicate_key_that_is_equal_but_spelled_differently_is_refused() -> None:
    with pytest.raises(SpecError, match="duplicate key"):
        load_yaml_text("1: one\n0x1: also one\n", "f.yaml")


TRICKY = ["yes", "no", "on", "off", "~", "null", "Null", "0x1f", "0o17", "1_000", "+1", ".5", "1e3", ".inf", "-.Inf",
          ".nan", "2026-12-03", "2026-12-03 10:00:00", "=", "<<", ":", "- a", "#", "a #b", "'", '"', "", " x", "x ",
          "é", "日本", "a: b", "{x}", "[1]", "!tag", "&anchor", "*alias", "%", "@", "`", "0", "007", "1.0", "true"]


def _random_scalar(rng: random.Random) -> object:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.choice(TRICKY)
    if kind == 1:
        return rng.randint(-10**20, 10**20)
    if kind == 2:
        return rng.choice([0.1, -2.5, 1e300, float("inf"), 3.0])
    if kind == 3:
        return rng.choice([True, False, None])
    return "".join(rng.choice("ab :-#'\"\n\t{}[],&*!|>%@`xyz0123456789") for _ in range(rng.randrange(8)))


def _random_data(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(3) if depth < 4 else 0
    if kind == 0:
        return _random_scalar(rng)
    if kind == 1:
        return [_random_data(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {_random_scalar(rng): _random_data(rng, depth + 1) for _ in range(rng.randrange(4))}


def _safe_load_or_error(text: str) -> tuple[bool, object]:
    try:
        return True, yaml.safe_load(text)
    except yaml.YAMLError:
        return False, None


def test_random_documents_read_exactly_as_safe_load_reads_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dumped in block and flow style, then some cut or spliced: the same data (types included) or an error."""
    node_loader, by_nodes = yaml_text._strict_loader, []
    monkeypatch.setattr(yaml_text, "_strict_loader", lambda: by_nodes.append(1) or node_loader())
    rng = random.Random(20261203)
    compared = 0
    for _ in range(3000):
        text = yaml.safe_dump(_random_data(rng), default_flow_style=rng.choice([True, False, None]),
                              allow_unicode=rng.choice([True, False]), width=rng.choice([20, 80, 1000]))
        if rng.random() < 0.3:  # damage it: a cut, or a splice of YAML syntax
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(["", ": ", "- ", "&a ", "*a", "!!str ", "<<: ", "{", "]", "\n  ", "---\n"]) \
                + text[at + rng.randrange(3):]
        ok, expected = _safe_load_or_error(text)
        try:
            loaded = load_yaml_text(text, "f.yaml")
        except SpecError as exc:
            assert not ok or "duplicate key" in str(exc), (text, exc)
            continue
        assert ok, text
        assert repr(loaded) == repr(expected), text
        compared += 1
    assert compared > 2000  # most documents compared as data, not as errors
    assert len(by_nodes) < 1000  # and most of them read from the parser's events, not by the node loader
