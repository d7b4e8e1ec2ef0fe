"""The local cache (entries, sidecars, stamps) and the scratch pool, on real files in a temp dir."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlpipe.core.errors import StoreError
from mlpipe.store.cache import DAMAGED, MISSING, PRESENT, LocalCache, ScratchPool, remove_tree

H1, H2 = "ab" + "1" * 30, "cd" + "2" * 30


@pytest.fixture
def cache(tmp_path: Path) -> LocalCache:
    return LocalCache(tmp_path / "cache" / "data", tmp_path / "cache" / "tmp")


def other_view(cache: LocalCache) -> LocalCache:
    """A second LocalCache on the same folders (another run, or this one's next command)."""
    return LocalCache(cache.data_dir, cache.scratch_dir, cache.stamps_dir)


def new_file(cache: LocalCache, text: str = "hello\n") -> Path:
    src = cache.new_scratch("t-") / "out"
    src.write_text(text)
    return src


def new_folder(cache: LocalCache, files: dict[str, str] | None = None) -> Path:
    src = cache.new_scratch("t-") / "out"
    for rel, text in (files or {"a.txt": "a", "sub/b.txt": "bb"}).items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    return src


def sidecar(cache: LocalCache, data_hash: str) -> Path:
    return cache.path(data_hash).with_name(data_hash + ".json")


def writable(path: Path) -> Path:
    for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
        p.chmod(p.stat().st_mode | stat.S_IWUSR)
    return path


# -- put / get: a published entry ------------------------------------------------------------
def test_a_published_file_is_present_read_only_and_described_by_its_sidecar(cache: LocalCache) -> None:
    src = new_file(cache)
    entry = cache.put(H1, src, md5="m" * 32, job_hash="j" * 32)
    assert not src.exists()  # moved, not copied
    assert entry.path == cache.data_dir / "ab" / H1 and entry.path.read_text() == "hello\n"
    assert not entry.path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert json.loads(sidecar(cache, H1).read_text()) == {
        "data_hash": H1, "md5": "m" * 32, "size": 6, "job_hash": "j" * 32, "created": entry.created}
    fresh = other_view(cache)
    assert fresh.state(H1) == PRESENT and fresh.get(H1) == entry and fresh.content_md5(H1) == "m" * 32


def test_a_published_folder_lists_its_files_and_sizes(cache: LocalCache) -> None:
    entry = cache.put(H1, new_folder(cache), md5="m" * 32, job_hash="j" * 32)
    assert entry.files == {"a.txt": 1, "sub/b.txt": 2} and entry.size == 3
    assert json.loads(sidecar(cache, H1).read_text())["files"] == {"a.txt": 1, "sub/b.txt": 2}
    assert other_view(cache).get(H1) == entry


def test_an_unknown_hash_is_missing(cache: LocalCache) -> None:
    assert cache.state(H1) == MISSING and not cache.exists(H1)
    assert cache.get(H1) is None and cache.content_md5(H1) is None
    assert list(cache.list()) == []


def test_an_existing_complete_entry_wins_unless_replaced(cache: LocalCache) -> None:
    first = cache.put(H1, new_file(cache, "first"), md5="1" * 32, job_hash="j" * 32)
    second_src = new_file(cache, "second")
    assert cache.put(H1, second_src, md5="2" * 32, job_hash="j" * 32) == first
    assert not second_src.exists() and first.path.read_text() == "first"
    forced = cache.put(H1, new_file(cache, "forced"), md5="3" * 32, job_hash="k" * 32, replace=True)
    assert forced.path.read_text() == "forced" and other_view(cache).content_md5(H1) == "3" * 32


def test_a_damaged_entry_is_replaced_by_the_next_put(cache: LocalCache) -> None:
    path = cache.put(H1, new_folder(cache), md5="1" * 32, job_hash="j" * 32).path
    (writable(path) / "a.txt").write_text("grown")
    fresh = other_view(cache)
    assert fresh.state(H1) == DAMAGED
    entry = fresh.put(H1, new_folder(cache), md5="2" * 32, job_hash="j" * 32)
    assert (entry.path / "a.txt").read_text() == "a" and other_view(cache).state(H1) == PRESENT


def test_put_of_a_missing_source_is_a_store_error_naming_the_hash(cache: LocalCache, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=rf"^cannot publish {H1} into the cache at .*{H1}: "):
        cache.put(H1, tmp_path / "nothing", md5="m" * 32, job_hash="j" * 32)
    assert other_view(cache).state(H1) == MISSING


def test_read_only_applies_inside_the_cache_only(cache: LocalCache, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("mine")
    before = outside.stat().st_mode
    src = new_folder(cache)
    (src / "link").symlink_to(outside)
    cache.put(H1, src, md5="m" * 32, job_hash="j" * 32)
    assert outside.stat().st_mode == before


def test_remove_and_list(cache: LocalCache) -> None:
    cache.put(H1, new_file(cache), md5="m" * 32, job_hash="j" * 32)
    cache.put(H2, new_folder(cache), md5="m" * 32, job_hash="j" * 32)
    assert sorted(cache.list()) == [H1, H2]
    cache.remove(H2)  # a read-only folder
    assert cache.state(H2) == MISSING and not cache.path(H2).exists() and list(cache.list()) == [H1]


# -- missing and damaged entries: stats only, a new view each time ---------------------------
@pytest.mark.parametrize(("kind", "damage", "state"), [
    ("file", "delete the data", MISSING),
    ("file", "delete the sidecar", MISSING),
    ("file", "truncate", DAMAGED),
    ("file", "grow", DAMAGED),
    ("file", "replace by a folder", DAMAGED),
    ("file", "replace by a link", DAMAGED),
    ("folder", "delete the data", MISSING),
    ("folder", "delete the sidecar", MISSING),
    ("folder", "delete a file", DAMAGED),
    ("folder", "grow a file", DAMAGED),
    ("folder", "replace a file by a folder", DAMAGED),
    ("folder", "replace by a file", DAMAGED),
])
def test_an_entry_whose_data_changed_is_missing_or_damaged(cache: LocalCache, kind: str, damage: str,
                                                           state: str) -> None:
    src = new_file(cache) if kind == "file" else new_folder(cache)
    path = cache.put(H1, src, md5="m" * 32, job_hash="j" * 32).path
    assert other_view(cache).state(H1) == PRESENT
    writable(path)
    inner = path / "sub" / "b.txt"
    if damage == "delete the data":
        remove_tree(path)
    elif damage == "delete the sidecar":
        sidecar(cache, H1).unlink()
    elif damage == "truncate":
        path.write_text("h")
    elif damage == "grow":
        path.write_text("hello, world\n")
    elif damage in ("replace by a folder", "replace by a link", "replace by a file"):
        remove_tree(path)
        if damage == "replace by a folder":
            path.mkdir()
        elif damage == "replace by a link":
            path.with_name("elsewhere").write_text("hello\n")  # same size, but not a file in the cache
            path.symlink_to(path.with_name("elsewhere"))
        else:
            path.write_text("abc")  # the folder's total size
    elif damage == "delete a file":
        inner.unlink()
    elif damage == "grow a file":
        inner.write_text("bbb")
    elif damage == "replace a file by a folder":
        inner.unlink()
        inner.mkdir()
    fresh = other_view(cache)
    assert fresh.state(H1) == state
    assert fresh.get(H1) is None and not fresh.exists(H1)


@pytest.mark.parametrize("torn", ['{"md5": "ab', "", "[1, 2]", "null", "\xff\xfe", '{"md5": "m"}',
                                  '{"md5": "m", "size": "six", "job_hash": "j", "created": 1}'])
def test_a_torn_or_foreign_sidecar_never_reads_as_present(cache: LocalCache, torn: str) -> None:
    cache.put(H1, new_file(cache), md5="m" * 32, job_hash="j" * 32)
    sidecar(cache, H1).write_bytes(torn.encode("latin-1"))
    fresh = other_view(cache)
    assert fresh.state(H1) in (MISSING, DAMAGED) and fresh.get(H1) is None
    assert fresh.put(H1, new_file(cache), md5="n" * 32, job_hash="j" * 32).md5 == "n" * 32  # and is replaced


def test_a_sidecar_without_an_md5_is_damaged(cache: LocalCache) -> None:
    cache.put(H1, new_file(cache), md5="m" * 32, job_hash="j" * 32)
    meta = json.loads(sidecar(cache, H1).read_text())
    del meta["md5"]
    sidecar(cache, H1).write_text(json.dumps(meta))
    assert other_view(cache).state(H1) == DAMAGED


def test_an_absent_entry_is_looked_up_again_when_another_process_publishes_it(cache: LocalCache) -> None:
    assert cache.state(H1) == MISSING
    other_view(cache).put(H1, new_file(cache), md5="m" * 32, job_hash="j" * 32)
    assert cache.state(H1) == PRESENT and cache.content_md5(H1) == "m" * 32


# -- stamps: jobs without outputs ------------------------------------------------------------
def test_stamps_mark_a_job_hash_done(cache: LocalCache) -> None:
    assert cache.stamps_dir == cache.data_dir.parent / "stamps"
    assert not cache.has_stamp("j" * 32)
    cache.stamp("j" * 32)
    cache.stamp("j" * 32)  # again: no error
    assert other_view(cache).has_stamp("j" * 32) and not cache.has_stamp("k" * 32)
    assert os.listdir(cache.stamps_dir) == ["j" * 32]


def test_a_stamp_that_cannot_be_written_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "stamps").write_text("a file where the folder should be")
    cache = LocalCache(tmp_path / "data", tmp_path / "tmp", tmp_path / "stamps")
    with pytest.raises(StoreError, match=r"^cannot stamp job j+ in .*stamps: "):
        cache.stamp("j" * 32)


# -- helpers --------------------------------------------------------------------------------
def test_new_scratch_names_carry_the_prefix_and_the_pid(cache: LocalCache) -> None:
    scratch = cache.new_scratch("job-")
    assert scratch.parent == cache.scratch_dir and scratch.name.startswith(f"job-{os.getpid()}-")


# -- ScratchPool: working directories, recycled within a run ---------------------------------
def pristine(path: Path) -> bool:
    return os.listdir(path) == ["outputs"] and os.listdir(path / "outputs") == []


def test_take_gives_an_empty_directory_with_an_empty_outputs_named_after_the_pid(cache: LocalCache) -> None:
    pool = ScratchPool(cache)
    first, second = pool.take("run-"), pool.take("run-")
    assert first != second
    for scratch in (first, second):
        assert scratch.parent == cache.scratch_dir and scratch.name.startswith(f"run-{os.getpid()}-")
        assert pristine(scratch) and stat.S_IMODE(scratch.stat().st_mode) == 0o700


def test_a_scratch_given_back_untouched_is_reused_under_a_new_name(cache: LocalCache) -> None:
    pool = ScratchPool(cache)
    first = pool.take("a-")
    inode = first.stat().st_ino
    pool.give_back(first)
    reused = pool.take("b-")
    assert reused.stat().st_ino == inode  # renamed, not made again
    assert not first.exists() and reused.name.startswith(f"b-{os.getpid()}-") and pristine(reused)
    pool.give_back(reused)
    assert os.listdir(cache.scratch_dir) == [reused.name]  # one spare, kept
    pool.close()
    assert os.listdir(cache.scratch_dir) == []


@pytest.mark.parametrize("dirt", ["an output", "a file beside outputs", "outputs removed", "outputs made read-only",
                                  "a read-only output folder", "the scratch itself removed"])
def test_a_dirty_scratch_is_removed_not_reused(cache: LocalCache, dirt: str) -> None:
    pool = ScratchPool(cache)
    scratch = pool.take("a-")
    outputs = scratch / "outputs"
    if dirt == "an output":
        (outputs / "model.bin").write_text("weights")
    elif dirt == "a file beside outputs":
        (scratch / "stdout.log").write_text("")
    elif dirt == "outputs removed":
        outputs.rmdir()
    elif dirt == "outputs made read-only":
        outputs.chmod(0o500)
    elif dirt == "a read-only output folder":
        (outputs / "folder").mkdir()
        (outputs / "folder" / "f").write_text("x")
        (outputs / "folder" / "f").chmod(0o400)
        (outputs / "folder").chmod(0o500)
    else:
        outputs.rmdir()
        scratch.rmdir()
    pool.give_back(scratch)
    assert not scratch.exists() and os.listdir(cache.scratch_dir) == []
    fresh = pool.take("b-")
    assert pristine(fresh) and fresh.name.startswith(f"b-{os.getpid()}-")


def test_threads_never_share_a_scratch(cache: LocalCache) -> None:
    pool = ScratchPool(cache)
    holders: dict[Path, int] = {}
    lock = threading.Lock()
    clashes: list[Path] = []

    def work(worker: int) -> None:
        for _ in range(40):
            scratch = pool.take("w-")
            with lock:
                if scratch in holders:
                    clashes.append(scratch)
                holders[scratch] = worker
            if worker % 2:  # half of them come back dirty
                (scratch / "outputs" / "o").write_text(str(worker))
            with lock:
                del holders[scratch]
            pool.give_back(scratch)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clashes == []
    pool.close()
    assert os.listdir(cache.scratch_dir) == []


def test_spares_are_removed_when_the_process_exits(tmp_path: Path) -> None:
    script = """
import sys
from pathlib import Path
from mlpipe.store.cache import LocalCache, ScratchPool
root = Path(sys.argv[1])
pool = ScratchPool(LocalCache(root / "data", root / "tmp"))
taken = [pool.take("x-") for _ in range(3)]
for scratch in taken:
    pool.give_back(scratch)
print(len(list((root / "tmp").iterdir())))
"""
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"  # kept while the process ran
    assert os.listdir(tmp_path / "tmp") == []
