"""DESIGN.md's hash formulas, in one place (golden values pinned in tests/test_hashing.py).

    fingerprint(input) = md5 of content; a folder: md5 over sorted "relpath\\0md5\\n"
    source_md5         = md5 over the module's source files, sorted "relpath\\0md5\\n"
    input_list         = ",".join(f"{name}={fingerprint}")   list input: "|"-joined
    param_list         = ",".join(f"{name}={json.dumps(value, sort_keys=True)}")
    job_hash           = md5("\\t".join([module_key, input_list, param_list]))
    data_hash          = md5("\\t".join([module_key, input_list, param_list, output_name]))

`module_key` is module_id + source_md5, or module_id + version when the module pins one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

_CHUNK = 1 << 20
_JSON = json.JSONEncoder(sort_keys=True)  # json.dumps(v, sort_keys=True), minus building an encoder per call


def md5_text(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def md5_file(path: str | os.PathLike[str]) -> str:
    """md5 of a file's bytes, read in 1 MiB chunks."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def md5_manifest(entries: Iterable[tuple[str, str]]) -> str:
    """md5 over sorted "relpath\\0md5\\n" lines: how folders and module sources are hashed."""
    return md5_text("".join(f"{rel}\0{digest}\n" for rel, digest in sorted(entries)))


def walk_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file under `root` as (posix relpath, path), sorted; symlinks are followed.

    A folder that cannot be listed raises OSError (os.walk would skip it: a wrong fingerprint)."""
    found = []
    for dirpath, _dirs, files in os.walk(root, followlinks=True, onerror=_raise):
        for name in files:
            path = Path(dirpath, name)
            found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def _raise(error: OSError) -> None:
    raise error


def fingerprint(path: Path, file_md5: Callable[[Path], str] = md5_file) -> str:
    """DESIGN's input fingerprint: a file's md5, or a folder's md5 over sorted "relpath\\0md5\\n".

    `file_md5` lets the stat-keyed memo (`DigestCache`) supply file digests.
    """
    if path.is_dir():
        return md5_manifest((rel, file_md5(p)) for rel, p in walk_files(path))
    return file_md5(path)


def module_key(module_id: str, source_md5: str, version: str | None = None) -> str:
    """First field of both hashes; a pinned `version` replaces the source md5."""
    return module_id + (version if version is not None else source_md5)


def input_list(fingerprints: Mapping[str, str | list[str]]) -> str:
    def one(value: str | list[str]) -> str:
        return "|".join(value) if isinstance(value, list) else value

    return ",".join(f"{name}={one(fingerprints[name])}" for name in sorted(fingerprints))


def param_list(params: Mapping[str, Any]) -> str:
    return ",".join(f"{name}={_JSON.encode(params[name])}" for name in sorted(params))


def compute_job_hash(key: str, fingerprints: Mapping[str, str | list[str]], params: Mapping[str, Any]) -> str:
    return md5_text("\t".join([key, input_list(fingerprints), param_list(params)]))


def compute_data_hash(
    key: str, fingerprints: Mapping[str, str | list[str]], params: Mapping[str, Any], output_name: str
) -> str:
    return md5_text("\t".join([key, input_list(fingerprints), param_list(params), output_name]))


def compute_hashes(
    key: str, fingerprints: Mapping[str, str | list[str]], params: Mapping[str, Any], output_names: Iterable[str]
) -> tuple[str, dict[str, str]]:
    """`compute_job_hash` and `compute_data_hash` of every output, building the lists once."""
    head = "\t".join([key, input_list(fingerprints), param_list(params)])
    return md5_text(head), {name: md5_text(f"{head}\t{name}") for name in output_names}
