"""The YAML memo: an unchanged file is not parsed again; anything else is parsed as before."""

from __future__ import annotations

import marshal
import os
from pathlib import Path

import pytest

from mlpipe.core import spec
from mlpipe.core.errors import SpecError
from mlpipe.home import loader
from mlpipe.home.loader import YamlMemo

PIPE = "jobs:\n  a: {module: toy/module/step, parameters: {name: a}}\n"
PARSED = {"jobs": {"a": {"module": "toy/module/step", "parameters": {"name": "a"}}}}


@pytest.fixture
def memo(tmp_path: Path) -> YamlMemo:
    return YamlMemo(tmp_path / "state" / "yaml")


def write(path: Path, text: str) -> tuple[Path, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path, text


def only_memo_file(memo: YamlMemo) -> Path:
    [found] = memo.folder.iterdir()
    return found


def plant(memo_file: Path, stamp: str, text: str, data: object) -> None:
    """Write a memo entry by hand, as an earlier run (or another parser) would have left it."""
    memo_file.write_bytes(marshal.dumps((stamp, text, data)))


def test_the_first_load_parses_and_keeps_a_memo(memo: YamlMemo, tmp_path: Path) -> None:
    path, text = write(tmp_path / "pipe" / "p.yaml", PIPE)
    assert memo.load(path, text) == PARSED
    stamp, kept_text, data = marshal.loads(only_memo_file(memo).read_bytes())
    assert (stamp, kept_text, data) == (loader._parser_stamp(), PIPE, PARSED)


def test_an_unchanged_file_is_read_from_the_memo_not_parsed(memo: YamlMemo, tmp_path: Path) -> None:
    path, text = write(tmp_path / "p.yaml", PIPE)
    memo.load(path, text)
    plant(only_memo_file(memo), loader._parser_stamp(), text, {"from": "the memo"})
    assert memo.load(path, text) == {"from": "the memo"}


def test_an_edited_file_is_parsed_again(memo: YamlMemo, tmp_path: Path) -> None:
    path, text = write(tmp_path / "p.yaml", PIPE)
    memo.load(path, text)
    plant(only_memo_file(memo), loader._parser_stamp(), text, {"from": "the memo"})
    path, edited = write(path, PIPE.replace("name: a", "name: b"))
    assert memo.load(path, edited)["jobs"]["a"]["parameters"] == {"name": "b"}
    assert marshal.loads(only_memo_file(memo).read_bytes())[1] == edited  # the memo follows the edit


def test_a_changed_parser_stamp_invalidates_the_memo(memo: YamlMemo, tmp_path: Path) -> None:
    path, text = write(tmp_path / "p.yaml", PIPE)
    memo.load(path, text)
    plant(only_memo_file(memo), "an older parser", text, {"from": "the memo"})
    assert memo.load(path, text) == PARSED
    assert marshal.loads(only_memo_file(memo).read_bytes())[0] == loader._parser_stamp()


def test_the_stamp_changes_when_the_parser_is_edited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "spec.py"
    copy.write_text(Path(spec.__file__).read_text())
    monkeypatch.setattr(spec, "__file__", str(copy))
    loader._parser_stamp.cache_clear()
    try:
        before = loader._parser_stamp()
        os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 1_000_000_000))
        loader._parser_stamp.cache_clear()
        assert loader._parser_stamp() != before
    finally:
        loader._parser_stamp.cache_clear()


@pytest.mark.parametrize("damage", [b"", b"garbage", b"\xe3\x00", "truncated", "not a triple"])
def test_a_damaged_memo_is_ignored_and_rewritten(memo: YamlMemo, tmp_path: Path, damage) -> None:
    path, text = write(tmp_path / "p.yaml", PIPE)
    memo.load(path, text)
    memo_file = only_memo_file(memo)
    if damage == "truncated":
        memo_file.write_bytes(memo_file.read_bytes()[:-7])
    elif damage == "not a triple":
        memo_file.write_bytes(marshal.dumps([1, 2]))
    else:
        memo_file.write_bytes(damage)
    assert memo.load(path, text) == PARSED
    assert marshal.loads(memo_file.read_bytes()) == (loader._parser_stamp(), PIPE, PARSED)


def test_files_of_one_name_in_two_folders_keep_their_own_memo(memo: YamlMemo, tmp_path: Path) -> None:
    one, one_text = write(tmp_path / "one" / "p.yaml", PIPE)
    two, two_text = write(tmp_path / "two" / "p.yaml", "jobs: {}\n")
    for _ in range(2):
        assert memo.load(one, one_text) == PARSED
        assert memo.load(two, two_text) == {"jobs": {}}
    assert len(list(memo.folder.iterdir())) == 2


def test_data_marshal_cannot_hold_is_parsed_each_time(memo: YamlMemo, tmp_path: Path) -> None:
    path, text = write(tmp_path / "p.yaml", "when: 2024-01-02 03:04:05\n")
    first = memo.load(path, text)
    assert memo.load(path, text) == first and type(first["when"]).__name__ == "datetime"
    assert not memo.folder.exists() or not any(memo.folder.iterdir())


def test_a_home_where_no_memo_can_be_written_only_costs_parsing(tmp_path: Path) -> None:
    blocked = tmp_path / "yaml"
    blocked.write_text("a file where the memo folder should be")
    path, text = write(tmp_path / "p.yaml", PIPE)
    memo = YamlMemo(blocked)
    assert memo.load(path, text) == PARSED and memo.load(path, text) == PARSED


def test_bad_yaml_is_a_spec_error_whether_or_not_a_memo_exists(memo: YamlMemo, tmp_path: Path) -> None:
    path, text = write(tmp_path / "p.yaml", PIPE)
    memo.load(path, text)
    path, broken = write(path, "jobs: [unclosed\n")
    with pytest.raises(SpecError, match="p.yaml"):
        memo.load(path, broken)
