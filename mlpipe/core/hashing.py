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
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from mlpipe.core.errors import TreeError

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


def walk_files(root: Path, *, within: Path | None = None) -> list[tuple[str, Path]]:
    """Every regular file under `root` as (posix relpath, path), sorted.

    Symbolic links are followed only while their target stays inside `within` (default: `root`
    itself). A link out of it, a dangling link, a link loop or a special file (fifo, socket)
    raises TreeError naming it: no walk leaves its root or runs forever.
    """
    boundary = os.path.realpath(within if within is not None else root)
    found: list[tuple[str, Path]] = []
    # (folder, relpath prefix, real paths of the folders above it: a link back to one is a loop)
    pending: list[tuple[str, str, frozenset[str]]] = [(os.fspath(root), "", frozenset([os.path.realpath(root)]))]
    while pending:
        folder, prefix, above = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                rel = prefix + entry.name
                if entry.is_symlink():
                    real = os.path.realpath(entry.path)
                    if not os.path.exists(real):
                        raise TreeError(f"{entry.path}: dangling symbolic link (to {os.readlink(entry.path)})")
                    if real != boundary and not real.startswith(boundary + os.sep):
                        raise TreeError(f"{entry.path}: symbolic link to {real}, outside {boundary}")
                    if os.path.isdir(real):
                        if real in above or boundary.startswith(real + os.sep):
                            raise TreeError(f"{entry.path}: symbolic link loop (back to {real})")
                        pending.append((entry.path, rel + "/", above | {real}))
                        continue
                    if not os.path.isfile(real):
                        raise TreeError(f"{entry.path}: not a regular file")
                    found.append((rel, Path(entry.path)))
                elif entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, rel + "/", above | {os.path.realpath(entry.path)}))
                elif entry.is_file(follow_symlinks=False):
                    found.append((rel, Path(entry.path)))
                else:
                    raise TreeError(f"{entry.path}: not a regular file or folder")
    found.sort()
    return found


def fingerprint(path: Path, file_md5: Callable[[Path], str] = md5_file, *, within: Path | None = None) -> str:
    """DESIGN's input fingerprint: a file's md5, or a folder's md5 over sorted "relpath\\0md5\\n".

    `file_md5` lets the stat-keyed memo (`DigestCache`) supply file digests; `within` is how far
    a folder's links may reach (see `walk_files`).
    """
    if path.is_dir():
        return md5_manifest((rel, file_md5(p)) for rel, p in walk_files(path, within=within))
    return file_md5(path)


def module_key(module_id: str, source_md5: str, version: str | None = None) -> str:
    """First field of both hashes; a pinned `version` replaces the source md5."""
    return module_id + (version if version is not None else source_md5)


def input_list(fingerprints: Mapping[str, str | list[str]]) -> str:
    def one(value: str | list[str]) -> str:
        return "|".join(value) if isinstance(value, list) else value

    return ",".join(f"{name}={one(fingerprints[name])}" for name in sorted(fingerprints))


def param_list(params: Mapping[str, Any]) -> str:
    return ",".join(f"{name}={_param_json(params[name])}" for name in sorted(params))


def _param_json(value: Any) -> str:
    """`json.dumps(value, sort_keys=True)`; strings and ints, most parameters, without the encoder's dispatch."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    return _JSON.encode(value)


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
