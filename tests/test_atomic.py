"""Atomic file writes (store/atomic.py): readers see the old content or the new, never half."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlpipe.store.atomic import write_bytes_atomic, write_json, write_json_atomic


def test_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "record.json"
    target.write_text("old")
    inode = target.stat().st_ino
    write_bytes_atomic(target, b"new")
    assert target.read_text() == "new"
    assert target.stat().st_ino != inode  # renamed in, not rewritten in place
    assert os.listdir(tmp_path) == ["record.json"]


def test_creates_the_folder_of_a_first_file(tmp_path: Path) -> None:
    write_json_atomic(tmp_path / "a" / "b" / "x.json", {"b": 1, "a": [1, 2]})
    assert json.loads((tmp_path / "a" / "b" / "x.json").read_text()) == {"a": [1, 2], "b": 1}


def test_a_failed_write_keeps_the_old_file_and_removes_its_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "x.json"
    target.write_text('{"ok": true}')
    with pytest.raises(TypeError):
        write_json_atomic(target, {"not json": object()})
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "text, not bytes")  # type: ignore[arg-type]
    assert target.read_text() == '{"ok": true}'
    assert os.listdir(tmp_path) == ["x.json"]


def test_json_is_compact_and_sorted(tmp_path: Path) -> None:
    write_json(tmp_path / "x.json", {"b": {"d": 1, "c": 2}, "a": None})
    assert (tmp_path / "x.json").read_text() == '{"a":null,"b":{"c":2,"d":1}}'


def test_a_durable_write_gets_the_mode_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "pipe" / "train.yaml"
    write_bytes_atomic(target, b"jobs: {}\n", durable=True, mode=0o640)
    assert target.read_bytes() == b"jobs: {}\n"
    assert target.stat().st_mode & 0o777 == 0o640
    assert os.listdir(target.parent) == ["train.yaml"]
