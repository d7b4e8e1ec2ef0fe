"""Tests for mlpipe.core.yaml_text: the same data as `yaml.safe_load`, duplicate keys refused,
errors located in the file, whichever of its two readers (events or nodes) reads the text."""

from __future__ import annotations

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
