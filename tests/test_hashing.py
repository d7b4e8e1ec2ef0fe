"""Golden tests for mlpipe.core.hashing (DESIGN.md's formulas) and the stat-keyed DigestCache.

If a golden value here changes, every cache entry of every user is invalidated: change the
formula only on purpose, and then update DESIGN.md, these literals and the release notes.
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap
from pathlib import Path

import pytest

from mlpipe.core.hashing import (
    compute_data_hash,
    compute_job_hash,
    input_list,
    md5_file,
    md5_manifest,
    md5_text,
    module_key,
    param_list,
    walk_files,
)
from mlpipe.core.plan import make_plan
from mlpipe.core.spec import parse_module, parse_pipe
from mlpipe.store import digests
from mlpipe.store.digests import DigestCache


def md5(data: str | bytes) -> str:
    return hashlib.md5(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


MODULE_ID = "text_classification/module/bow_model"
SOURCES = {"module/bow_model.yaml": b"cmd: x\n", "module/bow_model.py": b"print('train')\n"}
TRAIN, PART_A, PART_B = b"the cat sat\n", b"a\n", b"b\n"
PARAMS = {"num_epochs": 10, "alpha": 0.0001, "ngram_max": 1, "name": "x y", "opts": {"b": None, "a": [1, 2]}}

# DESIGN.md's formulas, written out by hand for the inputs above.
SOURCE_MD5 = md5(
    "module/bow_model.py\0" + md5(SOURCES["module/bow_model.py"]) + "\n"
    + "module/bow_model.yaml\0" + md5(SOURCES["module/bow_model.yaml"]) + "\n"
)
INPUT_LIST = f"extra={md5(PART_A)}|{md5(PART_B)},train_data={md5(TRAIN)}"
PARAM_LIST = 'alpha=0.0001,name="x y",ngram_max=1,num_epochs=10,opts={"a": [1, 2], "b": null}'
FINGERPRINTS = {"train_data": md5(TRAIN), "extra": [md5(PART_A), md5(PART_B)]}


def test_formulas_match_the_hand_written_strings() -> None:
    assert md5_manifest((rel, md5(data)) for rel, data in SOURCES.items()) == SOURCE_MD5
    assert input_list(FINGERPRINTS) == INPUT_LIST
    assert param_list(PARAMS) == PARAM_LIST
    assert module_key(MODULE_ID, SOURCE_MD5) == MODULE_ID + SOURCE_MD5
    assert module_key(MODULE_ID, SOURCE_MD5, "2") == MODULE_ID + "2"


def test_golden_job_and_data_hash() -> None:
    key = module_key(MODULE_ID, SOURCE_MD5)
    job_hash = compute_job_hash(key, FINGERPRINTS, PARAMS)
    data_hash = compute_data_hash(key, FINGERPRINTS, PARAMS, "model")
    # independently, from DESIGN.md
    assert job_hash == md5("\t".join([MODULE_ID + SOURCE_MD5, INPUT_LIST, PARAM_LIST]))
    assert data_hash == md5("\t".join([MODULE_ID + SOURCE_MD5, INPUT_LIST, PARAM_LIST, "model"]))
    # pinned: an accidental change of any formula fails here
    assert SOURCE_MD5 == "4ad81f78db4d56e7f2dc171a677ca074"
    assert job_hash == "e56757b20b2c83f792abae1be8ad1859"
    assert data_hash == "3df9ad3ab98ef44c4d954c6d4c71e721"


def test_golden_version_pin_replaces_source_md5() -> None:
    pinned = module_key(MODULE_ID, SOURCE_MD5, "2")
    job_hash = compute_job_hash(pinned, FINGERPRINTS, PARAMS)
    assert job_hash == md5("\t".join([MODULE_ID + "2", INPUT_LIST, PARAM_LIST]))
    assert job_hash == "8e2fe4b403fd0f88ea957cbde26746aa"
    # with a pin, the source md5 no longer matters
    assert compute_job_hash(module_key(MODULE_ID, "0" * 32, "2"), FINGERPRINTS, PARAMS) == job_hash


@pytest.mark.parametrize(
    ("fingerprints", "expected"),
    [
        ({}, ""),
        ({"b": "22", "a": "11"}, "a=11,b=22"),
        ({"x": ["3", "1", "2"]}, "x=3|1|2"),  # list order is kept (it is the argument order)
        ({"x": ["1"]}, "x=1"),
        ({"z": "9", "x": ["1", "2"]}, "x=1|2,z=9"),
    ],
)
def test_input_list(fingerprints: dict, expected: str) -> None:
    assert input_list(fingerprints) == expected


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ""),
        ({"n": 5, "a": 0.5}, "a=0.5,n=5"),
        ({"s": "hi", "t": True, "f": False, "z": None}, 'f=false,s="hi",t=true,z=null'),
        ({"l": [3, 1], "d": {"y": 1, "x": {"b": 2, "a": 1}}}, 'd={"x": {"a": 1, "b": 2}, "y": 1},l=[3, 1]'),
        ({"u": "é"}, 'u="\\u00e9"'),
        ({"f": 1.0}, "f=1.0"),
    ],
)
def test_param_list(params: dict, expected: str) -> None:
    assert param_list(params) == expected


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"params": {**PARAMS, "num_epochs": 11}}, "params"),
        ({"params": {**PARAMS, "num_epochs": 10.0}}, "params"),  # 10 and 10.0 are different values
        ({"fingerprints": {**FINGERPRINTS, "train_data": md5(b"other")}}, "inputs"),
        ({"fingerprints": {**FINGERPRINTS, "extra": [md5(PART_B), md5(PART_A)]}}, "list order"),
        ({"key": module_key(MODULE_ID, md5("other source"))}, "source"),
        ({"key": module_key("text_classification/module/other", SOURCE_MD5)}, "module id"),
    ],
)
def test_every_field_changes_the_job_hash(change: dict, field: str) -> None:
    base = {"key": module_key(MODULE_ID, SOURCE_MD5), "fingerprints": FINGERPRINTS, "params": PARAMS}
    changed = {**base, **change}
    assert compute_job_hash(**changed) != compute_job_hash(**base), field


def test_data_hash_differs_per_output_and_from_job_hash() -> None:
    key = module_key(MODULE_ID, SOURCE_MD5)
    hashes = {compute_job_hash(key, FINGERPRINTS, PARAMS)}
    hashes |= {compute_data_hash(key, FINGERPRINTS, PARAMS, out) for out in ("model", "report", "log")}
    assert len(hashes) == 4


def test_params_are_hashed_with_defaults_filled_in() -> None:
    """A job that spells out a default and one that relies on it are the same job."""
    app = Path(__file__).resolve().parent.parent / "apps" / "text_classification"
    path = app / "module" / "bow_model.yaml"
    spec = parse_module(path.read_text(), str(path), MODULE_ID)
    pipe = parse_pipe(textwrap.dedent("""
        jobs:
          implicit: {module: %s, input: {train_data: s3://my-bucket/t}, output: {model: m1},
                     parameters: {num_epochs: 10}}
          explicit: {module: %s, input: {train_data: s3://my-bucket/t}, output: {model: m2},
                     parameters: {num_epochs: 10, alpha: 0.0001, ngram_max: 1}}
          other: {module: %s, input: {train_data: s3://my-bucket/t}, output: {model: m3}, parameters: {num_epochs: 11}}
        """ % ((MODULE_ID,) * 3)), "p.yaml", "text_classification/pipe/p.yaml")
    plan = make_plan(pipe, {MODULE_ID: spec})
    key, fps = module_key(MODULE_ID, SOURCE_MD5), {"train_data": md5(TRAIN)}
    implicit, explicit, other = (compute_job_hash(key, fps, plan.jobs[n].params)
                                 for n in ("implicit", "explicit", "other"))
    assert param_list(plan.jobs["implicit"].params) == "alpha=0.0001,ngram_max=1,num_epochs=10"
    assert implicit == explicit != other
    assert implicit == md5("\t".join([key, f"train_data={md5(TRAIN)}", "alpha=0.0001,ngram_max=1,num_epochs=10"]))


# --- files and folders ---------------------------------------------------------------------------

def write(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


FOLDER = {"b.txt": b"b\n", "a/c.txt": b"c\n", "a/z/d.bin": b"\x00\x01"}


def test_golden_folder_fingerprint(tmp_path: Path) -> None:
    folder = write(tmp_path / "folder", FOLDER)
    expected = md5(
        "a/c.txt\0" + md5(b"c\n") + "\n"
        + "a/z/d.bin\0" + md5(b"\x00\x01") + "\n"
        + "b.txt\0" + md5(b"b\n") + "\n"
    )
    assert expected == "7f03c9ff7215a418a0867c23fa56c648"
    assert DigestCache(None).fingerprint(folder) == expected
    assert md5_manifest((rel, md5_file(p)) for rel, p in walk_files(folder)) == expected
    assert [rel for rel, _ in walk_files(folder)] == ["a/c.txt", "a/z/d.bin", "b.txt"]


def test_file_fingerprint_is_content_md5(tmp_path: Path) -> None:
    path = write(tmp_path, {"f": TRAIN}) / "f"
    assert md5_file(path) == DigestCache(None).fingerprint(path) == md5(TRAIN) == "dd0ff9bbf3177cd51b3b6eaccb193654"
    assert md5_text("") == "d41d8cd98f00b204e9800998ecf8427e"


def test_folder_fingerprint_ignores_location_but_not_names(tmp_path: Path) -> None:
    one = DigestCache(None).fingerprint(write(tmp_path / "one", FOLDER))
    two = DigestCache(None).fingerprint(write(tmp_path / "elsewhere" / "two", FOLDER))
    renamed = DigestCache(None).fingerprint(write(tmp_path / "three", {**FOLDER, "b.txt": b"", "bb.txt": b"b\n"}))
    assert one == two != renamed


# --- DigestCache -----------------------------------------------------------------------------------

def rewrite_same_stat(path: Path, data: bytes) -> None:
    """Replace the content in place (same inode), keep the size, restore mtime_ns."""
    before = path.stat()
    assert len(data) == before.st_size
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)


def test_digest_cache_is_stat_keyed(tmp_path: Path) -> None:
    path = write(tmp_path, {"big.bin": b"aaaa"}) / "big.bin"
    cache = DigestCache(None)
    assert cache.file_md5(path) == md5(b"aaaa")
    rewrite_same_stat(path, b"bbbb")
    assert cache.file_md5(path) == md5(b"aaaa")  # stale on purpose: the file was not re-read
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a touch
    assert cache.file_md5(path) == md5(b"bbbb")


def test_digest_cache_reads_an_unchanged_file_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []

    def counting_md5_file(path: Path) -> str:
        reads.append(path)
        return md5_file(path)

    monkeypatch.setattr(digests, "md5_file", counting_md5_file)
    folder = write(tmp_path / "d", {"x": b"1", "y": b"2"})
    cache = DigestCache(None)
    first = cache.fingerprint(folder)
    assert cache.fingerprint(folder) == first
    assert cache.file_md5(folder / "x") == md5(b"1")
    assert sorted(p.name for p in reads) == ["x", "y"]


def test_digest_cache_notices_a_size_change(tmp_path: Path) -> None:
    path = write(tmp_path, {"f": b"aaaa"}) / "f"
    cache = DigestCache(None)
    assert cache.file_md5(path) == md5(b"aaaa")
    before = path.stat()
    path.write_bytes(b"aaaaa")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert cache.file_md5(path) == md5(b"aaaaa")


def test_digest_cache_persists_across_instances(tmp_path: Path) -> None:
    db = tmp_path / "state" / "md5.sqlite"
    path = write(tmp_path, {"f": b"aaaa"}) / "f"
    first = DigestCache(db)
    assert first.file_md5(path) == md5(b"aaaa")
    assert not db.exists()  # nothing is written before save()
    first.save()
    assert db.is_file()
    rewrite_same_stat(path, b"bbbb")
    assert DigestCache(db).file_md5(path) == md5(b"aaaa")  # the saved (stale) digest, not a re-read
    assert DigestCache(None).file_md5(path) == md5(b"bbbb")  # without the memo, the truth


def test_digest_cache_save_without_changes_or_db_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "md5.sqlite"
    DigestCache(db).save()
    assert not db.exists()
    cache = DigestCache(None)
    cache.file_md5(write(tmp_path, {"f": b"x"}) / "f")
    cache.save()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_damaged_digest_db_only_costs_rehashing(tmp_path: Path) -> None:
    db = tmp_path / "md5.sqlite"
    db.write_bytes(b"this is not sqlite" * 100)
    path = write(tmp_path, {"f": b"data"}) / "f"
    assert DigestCache(db).file_md5(path) == md5(b"data")


def test_json_dumps_is_the_param_encoding() -> None:
    """param_list is json.dumps(value, sort_keys=True), not repr or yaml."""
    value = {"b": [1.5, "x"], "a": {"d": None, "c": True}}
    assert param_list({"p": value}) == "p=" + json.dumps(value, sort_keys=True)
