"""The S3 mirror: a remote copy of the cache, so no machine reruns a job another one already ran.

    s3://BUCKET/PREFIX/
      data/<data_hash>             a file output; its sidecar is the object's metadata
                                   (mlpipe-md5, -size, -job-hash, -created): one PUT is atomic,
                                   so the object's presence marks a complete entry
      data/<data_hash>/<relpath>   each file of a folder output, and then, LAST:
      data/<data_hash>.json        the folder's sidecar {format, kind, md5, size, job_hash,
                                   created, manifest: {relpath: {md5, size}}}
      jobs/<job_hash>.json         the record of the job that made it, uploaded before the entry
                                   is complete (so a complete entry always has its record)

    push   folder files ─> job records ─> file objects and folder sidecars
    pull   (metadata | sidecar) ─> data into scratch ─> size + md5 checked ─> LocalCache.put

Keys are content-addressed and never rewritten, so what is present is known from ONE paginated
listing of `data/` with delimiter "/" (a folder's files are not listed), taken once per S3Mirror
and kept up to date with what it pushes. Transfers run on a thread pool. An interrupted push
leaves no complete entry and an interrupted pull leaves only scratch, so running it again resumes.

`S3Mirror` raises StoreError when the mirror fails (what `ml sync` wants); `open_mirror` wraps
it for `ml runpipe`: the first failure warns once and turns the mirror off for the run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from mlpipe.core.errors import StoreError, UsageError
from mlpipe.core.hashing import md5_file, md5_manifest, walk_files
from mlpipe.home.settings import Settings
from mlpipe.remote import s3
from mlpipe.remote.mirror_entry import (
    FILE,
    FOLDER,
    Corrupt,
    Sidecar,
    check_entry,
    check_size,
    parse_mirror_url,
    parse_sidecar,
    sidecar_from_metadata,
)
from mlpipe.store import records
from mlpipe.store.cache import CacheEntry, LocalCache, remove_tree

THREADS = 16  # parallel object transfers (the client's connection pool is sized to match)
LARGE = 64 * 1024 * 1024  # objects from this size on go through multipart transfers
LARGE_PART = 8 * 1024 * 1024  # part size and parts in flight per large object (as boto3 and the aws CLI);
LARGE_CONCURRENCY = 10  # at most 2 large objects move at once
_CHUNK = 1 << 20
_MISSING = {"404", "NoSuchKey", "NotFound"}
T = TypeVar("T")
R = TypeVar("R")


def warn(message: str) -> None:
    print(f"ml: warning: {message}", file=sys.stderr, flush=True)


@dataclass
class Listing:
    """What one listing of `data/` showed: complete entries, file objects, folder prefixes."""

    complete: set[str] = field(default_factory=set)
    files: dict[str, s3.ObjectInfo] = field(default_factory=dict)  # data hash -> its object
    folders: set[str] = field(default_factory=set)  # data hashes with a prefix (complete or not)


@dataclass
class Transfer:
    """The outcome of a push or a pull: entries moved, their bytes, those already there, problems."""

    entries: int = 0
    bytes: int = 0
    present: int = 0
    problems: list[str] = field(default_factory=list)

    def add(self, other: Transfer) -> None:
        self.entries, self.bytes = self.entries + other.entries, self.bytes + other.bytes
        self.present, self.problems = self.present + other.present, self.problems + other.problems


@dataclass(frozen=True)
class _Part:
    """One file of a folder entry: where it is locally, its key, and (pulling) what it must be."""

    data_hash: str
    rel: str
    path: Path
    key: str
    size: int = 0
    md5: str = ""


class S3Mirror:
    """has / pull / push against `s3://bucket/prefix`, raising StoreError when the mirror fails."""

    def __init__(self, settings: Settings, *, threads: int = THREADS, on_problem: Callable[[str], None] = warn,
                 listed: bool = True):
        if not settings["S3_MIRROR"]:
            raise UsageError("setting S3_MIRROR is not set: give it as s3://bucket/prefix in extra_settings.py "
                             "or as MLPIPE_S3_MIRROR")
        self.settings = settings
        self.bucket, self.prefix = parse_mirror_url(settings["S3_MIRROR"])
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.cache = LocalCache(settings.data_dir, settings.scratch_dir)
        self.threads = threads
        self.on_problem = on_problem
        self.listed = listed  # False: no listing, entries are learnt one HEAD at a time (`refresh`)
        self._client: s3.S3Client | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._listing: Listing | None = None
        self._lock = threading.Lock()
        self._listing_lock = threading.Lock()
        self._large = threading.Semaphore(2)

    # -- plumbing -------------------------------------------------------------------------
    @property
    def client(self) -> s3.S3Client:
        with self._lock:
            if self._client is None:
                pool = self.threads + 2 * LARGE_CONCURRENCY
                self._client = s3.make_client(self.settings, StoreError, max_pool_connections=pool,
                                              raw_timestamps=True, transfers=False)
            return self._client

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> S3Mirror:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """`fn` over `items` on the thread pool, results in order; the first exception cancels the rest."""
        items = list(items)
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="mlpipe-mirror")
            pool = self._pool
        futures = [pool.submit(fn, item) for item in items]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            wait(futures)  # NOTE: transfers in flight finish first, so the caller's cleanup comes after them
            raise

    @contextmanager
    def _s3(self, key: str, missing_is_corrupt: bool = True) -> Iterator[None]:
        """botocore errors become StoreError; a missing key is Corrupt (the entry is incomplete).

        (Not `s3.translated`: it imports boto3, which a nothing-to-do sync never needs.)
        """
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            if missing_is_corrupt and str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                raise Corrupt(f"{key} is missing") from None
            raise self._store_error(exc, key) from exc
        except BotoCoreError as exc:
            raise self._store_error(exc, key) from exc

    def _store_error(self, exc: Exception, key: str) -> StoreError:
        error = s3.translate(exc, f"s3://{self.bucket}/{key}", s3.describe_endpoint(self.client), StoreError)
        return error if isinstance(error, StoreError) else StoreError(str(error))

    def data_key(self, data_hash: str, rel: str = "") -> str:
        return f"{self.prefix}data/{data_hash}/{rel}" if rel else f"{self.prefix}data/{data_hash}"

    def sidecar_key(self, data_hash: str) -> str:
        return f"{self.prefix}data/{data_hash}.json"

    def record_key(self, job_hash: str) -> str:
        return f"{self.prefix}jobs/{job_hash}.json"

    # -- what is there --------------------------------------------------------------------
    def listing(self, refresh: bool = False) -> Listing:
        """The mirror's entries from one paginated listing, kept for this mirror's lifetime."""
        with self._listing_lock:  # jobs running in parallel wait for the first listing, not repeat it
            if self._listing is None or refresh:
                self._listing = self._list_entries() if self.listed else Listing()
            return self._listing

    def forget(self) -> None:
        """Drop what this mirror knows of the server and of the local cache (a worker, between jobs)."""
        with self._listing_lock:
            self._listing = None
        self.cache = LocalCache(self.settings.data_dir, self.settings.scratch_dir)

    def _list_entries(self) -> Listing:
        listing, start = Listing(), len(self.prefix) + len("data/")
        for key, info in self._list(f"{self.prefix}data/", delimiter="/"):
            name = key[start:]
            if info is None:
                listing.folders.add(name.rstrip("/"))
            elif name.endswith(".json"):
                listing.complete.add(name[:-5])
            else:
                listing.complete.add(name)
                listing.files[name] = info
        return listing

    def _list(self, prefix: str, delimiter: str = "") -> list[tuple[str, s3.ObjectInfo | None]]:
        """(key, info) for each object, (prefix/, None) for each common prefix: all pages."""
        found: list[tuple[str, s3.ObjectInfo | None]] = []
        with self._s3(prefix, missing_is_corrupt=False):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, **({"Delimiter": delimiter} if delimiter else {}))
            for page in pages:
                for item in page.get("Contents", []):
                    found.append((item["Key"], s3.ObjectInfo(item["Key"], item["ETag"].strip('"'), int(item["Size"]))))
                found += [(common["Prefix"], None) for common in page.get("CommonPrefixes", [])]
        return found

    def remote(self) -> set[str]:
        """Every complete entry's data hash."""
        listing = self.listing()
        with self._lock:
            return set(listing.complete)

    def has(self, data_hashes: list[str]) -> bool:
        complete = self.listing().complete
        return all(h in complete for h in data_hashes)

    def refresh(self, data_hashes: Iterable[str]) -> None:
        """Ask the server about entries the listing does not show (another process pushed them
        since it was taken): a HEAD of each one's object or folder sidecar, no new listing."""
        listing = self.listing()
        for data_hash in data_hashes:
            if data_hash in listing.complete:
                continue
            for key in (self.data_key(data_hash), self.sidecar_key(data_hash)):
                try:
                    with self._s3(key):
                        head = self.client.head_object(Bucket=self.bucket, Key=key)
                except Corrupt:  # not there
                    continue
                with self._lock:
                    listing.complete.add(data_hash)
                    if key == self.data_key(data_hash):
                        listing.files[data_hash] = s3.ObjectInfo(key, head["ETag"].strip('"'),
                                                                 int(head["ContentLength"]))
                break

    def entry_md5(self, data_hash: str) -> str | None:
        """A complete entry's content md5: a file's ETag (no request), else its sidecar or metadata."""
        listing = self.listing()
        info = listing.files.get(data_hash)
        if info is not None and not info.is_multipart:
            return info.etag
        if data_hash not in listing.complete:
            return None
        try:
            if info is not None:
                with self._s3(info.key):
                    head = self.client.head_object(Bucket=self.bucket, Key=info.key)
                return sidecar_from_metadata(data_hash, head["Metadata"]).md5
            sidecar = self._read_sidecar(data_hash)
        except Corrupt:
            return None
        return None if isinstance(sidecar, Corrupt) else sidecar.md5

    def _corrupt(self, data_hash: str, exc: Corrupt) -> str:
        """Stop offering a corrupt entry; the next push of it (by whoever runs the job) repairs it."""
        with self._lock:
            if self._listing is not None:
                self._listing.complete.discard(data_hash)
                self._listing.files.pop(data_hash, None)
        return f"mirror {self.url}: entry {data_hash} is corrupt: {exc}"

    # -- pull -----------------------------------------------------------------------------
    def pull(self, data_hashes: list[str]) -> bool:
        """Bring every one of `data_hashes` into the local cache; False if any is missing or corrupt."""
        missing = [h for h in data_hashes if not self.cache.exists(h)]
        if not self.has(missing):
            return False
        for problem in self.pull_entries(missing).problems:
            self.on_problem(f"{problem}; not cached, the job runs locally")
        return all(self.cache.exists(h) for h in data_hashes)

    def pull_entries(self, data_hashes: Iterable[str]) -> Transfer:
        """Download, verify and cache these complete entries; corrupt ones become `problems`."""
        data_hashes = list(data_hashes)
        files = self.listing().files
        staging = self.cache.new_scratch("pull-")  # one folder for the batch: each entry is moved out of it
        try:
            first = self._map(lambda h: self._pull_file(h, staging) if h in files else self._read_sidecar(h),
                              data_hashes)
            outcomes = dict(zip(data_hashes, first, strict=True))
            outcomes.update(self._pull_folders([o for o in first if isinstance(o, Sidecar)], staging))
        finally:
            remove_tree(staging)
        result = Transfer()
        for data_hash, outcome in outcomes.items():
            if isinstance(outcome, Corrupt):
                result.problems.append(self._corrupt(data_hash, outcome))
            elif isinstance(outcome, int):
                result.entries, result.bytes = result.entries + 1, result.bytes + outcome
        return result

    def _pull_file(self, data_hash: str, staging: Path) -> int | Corrupt:
        """GET a file entry (its metadata arrives with it), check it, cache it; its size."""
        key, dest = self.data_key(data_hash), staging / data_hash
        try:
            with self._s3(key):
                if self.listing().files[data_hash].size >= LARGE:
                    head = self.client.head_object(Bucket=self.bucket, Key=key)
                    sidecar = sidecar_from_metadata(data_hash, head["Metadata"])
                    check_size(key, int(head["ContentLength"]), sidecar.size)
                    size, md5 = self._download_large(key, dest, sidecar.size)
                else:
                    reply = self.client.get_object(Bucket=self.bucket, Key=key)
                    with closing(reply["Body"]) as body:  # also when its metadata is refused
                        sidecar = sidecar_from_metadata(data_hash, reply["Metadata"])
                        size, md5 = _stream(body, dest)
            check_entry(key, size, md5, sidecar.size, sidecar.md5)
        except Corrupt as exc:
            dest.unlink(missing_ok=True)
            return exc
        self.cache.put(data_hash, dest, md5=sidecar.md5, job_hash=sidecar.job_hash)
        return size

    def _read_sidecar(self, data_hash: str) -> Sidecar | Corrupt:
        try:
            with self._s3(self.sidecar_key(data_hash)):
                raw = self.client.get_object(Bucket=self.bucket, Key=self.sidecar_key(data_hash))["Body"].read()
            return parse_sidecar(data_hash, raw)
        except Corrupt as exc:
            return exc

    def _pull_folders(self, sidecars: list[Sidecar], staging: Path) -> dict[str, int | Corrupt]:
        """Every file of these folders in parallel; a folder enters the cache whole, or not at all."""
        for sidecar in sidecars:
            (staging / sidecar.data_hash).mkdir()
        parts = [_Part(s.data_hash, rel, staging / s.data_hash / rel, self.data_key(s.data_hash, rel), size, md5)
                 for s in sidecars for rel, (size, md5) in sorted(s.manifest.items())]
        outcomes: dict[str, int | Corrupt] = {}
        for part, bad in zip(parts, self._map(self._download_part, parts), strict=True):
            if bad is not None:
                outcomes.setdefault(part.data_hash, bad)
        for sidecar in sidecars:
            got = md5_manifest((rel, md5) for rel, (_size, md5) in sidecar.manifest.items())
            if sidecar.data_hash in outcomes:
                continue
            if got != sidecar.md5:
                outcomes[sidecar.data_hash] = Corrupt(f"its manifest md5 is {got}, the sidecar says {sidecar.md5}")
                continue
            self.cache.put(sidecar.data_hash, staging / sidecar.data_hash, md5=got, job_hash=sidecar.job_hash)
            outcomes[sidecar.data_hash] = sidecar.size
        return outcomes

    def _download_part(self, part: _Part) -> Corrupt | None:
        part.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._s3(part.key):
                if part.size >= LARGE:
                    size, md5 = self._download_large(part.key, part.path, part.size)
                else:
                    size, md5 = _stream(self.client.get_object(Bucket=self.bucket, Key=part.key)["Body"], part.path)
            check_entry(part.key, size, md5, part.size, part.md5)
        except Corrupt as exc:
            return exc
        return None

    def _download_large(self, key: str, dest: Path, size: int) -> tuple[int, str]:
        """Ranged GETs in parallel into `dest`, hashed in order as they land: no second pass for the md5.

        (boto3's download_file, then md5 over the file, takes download + hash time; this takes the longer.)
        """
        fd = os.open(dest, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        digest = hashlib.md5()
        starts = range(0, size, LARGE_PART)
        try:
            os.ftruncate(fd, size)
            with self._large, ThreadPoolExecutor(LARGE_CONCURRENCY, thread_name_prefix="mlpipe-part") as pool:
                futures = [pool.submit(self._get_range, key, fd, start, min(start + LARGE_PART, size))
                           for start in starts]
                try:
                    for start, future in zip(starts, futures, strict=True):
                        digest.update(os.pread(fd, future.result(), start))  # from the page cache
                except BaseException:
                    for future in futures:
                        future.cancel()
                    raise
        finally:
            os.close(fd)
        return size, digest.hexdigest()

    def _get_range(self, key: str, fd: int, start: int, end: int) -> int:
        """Write bytes [start, end) of the object at the same offsets of `fd`; how many came."""
        from botocore.exceptions import ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key, Range=f"bytes={start}-{end - 1}")["Body"]
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code")) == "InvalidRange":
                raise Corrupt(f"{key} is shorter than expected") from None
            raise
        offset = start
        with closing(body):
            for chunk in iter(lambda: body.read(_CHUNK), b""):
                os.pwrite(fd, chunk, offset)
                offset += len(chunk)
        if offset != end:
            raise Corrupt(f"{key}: bytes {start}-{end - 1} came back as {offset - start} bytes (truncated?)")
        return end - start

    # -- push -----------------------------------------------------------------------------
    def push(self, entries: list[CacheEntry], record: records.JobRecord) -> None:
        """Upload a finished job's outputs and its record (what the mirror already has is skipped)."""
        for problem in self.push_entries(entries, lambda job: record if job == record.job_id else None).problems:
            self.on_problem(problem)

    def push_entries(self, entries: list[CacheEntry],
                     record_of: Callable[[str], records.JobRecord | None]) -> Transfer:
        """Upload what the mirror lacks: folder files, then job records, then what completes each entry."""
        listing = self.listing()
        todo = [e for e in entries if e.data_hash not in listing.complete]
        result = Transfer(present=len(entries) - len(todo))
        folders = self._push_folder_files([e for e in todo if e.path.is_dir()], listing)
        ready: list[CacheEntry | Sidecar] = [e for e in todo if not e.path.is_dir()]
        for entry in todo:
            outcome = folders.get(entry.data_hash)
            if isinstance(outcome, Corrupt):
                result.problems.append(f"local cache entry {entry.data_hash} ({entry.path}): {outcome}; not pushed")
            elif outcome is not None:
                ready.append(outcome)
        jobs = {item.job_hash for item in ready}
        self._map(self._put_record, [r for r in map(record_of, sorted(jobs))
                                     if r is not None and not any(h in listing.complete for h in r.outputs.values())])
        for item, done in zip(ready, self._map(self._complete, ready), strict=True):
            if isinstance(done, Corrupt):
                result.problems.append(f"local cache entry {item.data_hash}: {done}; not pushed")
            else:
                result.entries, result.bytes = result.entries + 1, result.bytes + done
                with self._lock:
                    listing.complete.add(item.data_hash)
                    if isinstance(item, CacheEntry):
                        listing.files[item.data_hash] = s3.ObjectInfo(self.data_key(item.data_hash), item.md5, done)
        return result

    def _push_folder_files(self, folders: list[CacheEntry], listing: Listing) -> dict[str, Sidecar | Corrupt]:
        """Upload each folder's files (skipping what a half-finished push left); their sidecars."""
        existing: dict[str, s3.ObjectInfo] = {}
        for entry in folders:
            if entry.data_hash in listing.folders:  # only after an interrupted push: one listing each
                existing.update((key, info) for key, info in self._list(self.data_key(entry.data_hash) + "/") if info)
        parts = [_Part(e.data_hash, rel, path, self.data_key(e.data_hash, rel)) for e in folders
                 for rel, path in walk_files(e.path)]
        done = self._map(lambda part: self._upload_part(part, existing.get(part.key)), parts)
        manifests: dict[str, dict[str, tuple[int, str]]] = {e.data_hash: {} for e in folders}
        for part, size_md5 in zip(parts, done, strict=True):
            manifests[part.data_hash][part.rel] = size_md5
        outcomes: dict[str, Sidecar | Corrupt] = {}
        for entry in folders:
            manifest = manifests[entry.data_hash]
            got = md5_manifest((rel, md5) for rel, (_size, md5) in manifest.items())
            outcomes[entry.data_hash] = (
                Corrupt(f"its content md5 is now {got}, the cache recorded {entry.md5}") if got != entry.md5 else
                Sidecar(entry.data_hash, FOLDER, got, sum(s for s, _ in manifest.values()), entry.job_hash,
                        entry.created, manifest))
        return outcomes

    def _upload_part(self, part: _Part, existing: s3.ObjectInfo | None) -> tuple[int, str]:
        """Upload one file of a folder unless `existing` holds its bytes; its (size, md5)."""
        size = part.path.stat().st_size
        if size >= LARGE:
            md5 = md5_file(part.path)
            if existing is None or not _holds(existing, size, md5):
                self._upload_large(part.path, part.key, {})
            return size, md5
        body = part.path.read_bytes()
        md5 = hashlib.md5(body).hexdigest()
        if existing is None or not _holds(existing, len(body), md5):
            self._put(part.key, body, md5)
        return len(body), md5

    def _complete(self, item: CacheEntry | Sidecar) -> int | Corrupt:
        """Publish an entry: a file entry's object with its metadata, or a folder's sidecar."""
        if isinstance(item, Sidecar):
            self._put(self.sidecar_key(item.data_hash), item.to_json(), content_type="application/json")
            return item.size
        sidecar = Sidecar(item.data_hash, FILE, item.md5, item.size, item.job_hash, item.created)
        if item.size >= LARGE:  # hashed once more before it goes out: the mirror never gets bad bytes
            md5 = md5_file(item.path)
            if md5 != item.md5:
                return Corrupt(f"its md5 is now {md5}, the cache recorded {item.md5}")
            self._upload_large(item.path, self.data_key(item.data_hash), sidecar.to_metadata())
            return item.size
        body = item.path.read_bytes()
        md5 = hashlib.md5(body).hexdigest()
        if md5 != item.md5 or len(body) != item.size:
            return Corrupt(f"its md5 is now {md5}, the cache recorded {item.md5}")
        self._put(self.data_key(item.data_hash), body, md5, sidecar.to_metadata())
        return len(body)

    def _put(self, key: str, body: bytes, md5: str = "", metadata: dict[str, str] | None = None,
             content_type: str = "") -> None:
        """One PUT; with Content-MD5 the server refuses bytes damaged on the way."""
        extra: dict[str, Any] = {"Metadata": metadata} if metadata else {}
        if md5:
            extra["ContentMD5"] = base64.b64encode(bytes.fromhex(md5)).decode()
        if content_type:
            extra["ContentType"] = content_type
        with self._s3(key):
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)

    def _upload_large(self, path: Path, key: str, metadata: dict[str, str]) -> None:
        """A multipart upload (boto3's transfer manager: parts in parallel)."""
        from boto3.exceptions import Boto3Error
        from boto3.s3.transfer import S3Transfer

        with self._large, self._s3(key):
            try:
                S3Transfer(self.client, _large_config()).upload_file(
                    str(path), self.bucket, key, extra_args={"Metadata": metadata} if metadata else None)
            except Boto3Error as exc:
                raise self._store_error(exc, key) from exc

    def _put_record(self, record: records.JobRecord) -> None:
        body = json.dumps(asdict(record), indent=1, sort_keys=True).encode()
        self._put(self.record_key(record.job_id), body, content_type="application/json")


def _stream(body: Any, dest: Path) -> tuple[int, str]:
    """Write a GET's body to `dest`, hashing on the way (one pass over the bytes); close the body
    (a body left open holds its connection until the garbage collector finds it)."""
    digest, size = hashlib.md5(), 0
    with closing(body), open(dest, "wb") as out:
        for chunk in iter(lambda: body.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _holds(info: s3.ObjectInfo, size: int, md5: str) -> bool:
    return info.size == size and not info.is_multipart and info.etag == md5


def _large_config() -> Any:
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=LARGE, multipart_chunksize=LARGE_PART,
                          max_concurrency=LARGE_CONCURRENCY)


class RunMirror:
    """The mirror as `ml runpipe` uses it: its first failure warns once, then it is off for the run."""

    def __init__(self, mirror: S3Mirror, on_warning: Callable[[str], None] = warn):
        self.mirror = mirror
        self.on_warning = on_warning
        self.off = False
        self._lock = threading.Lock()

    @property
    def cache(self) -> LocalCache:
        """The local cache the mirror pulls into (the run's one local cache)."""
        return self.mirror.cache

    def has(self, data_hashes: list[str]) -> bool:
        return bool(self._guard(lambda: self.mirror.has(data_hashes), False))

    def pull(self, data_hashes: list[str]) -> bool:
        return bool(self._guard(lambda: self.mirror.pull(data_hashes), False))

    def push(self, entries: list[CacheEntry], record: records.JobRecord) -> None:
        self._guard(lambda: self.mirror.push(entries, record), None)

    def _guard(self, action: Callable[[], Any], fallback: Any) -> Any:
        if self.off:
            return fallback
        try:
            return action()
        except (StoreError, OSError) as exc:
            with self._lock:
                first, self.off = not self.off, True
            if first:
                self.on_warning(f"S3 mirror {self.mirror.url} failed, running without it for the rest of this run: "
                                f"{getattr(exc, 'strerror', None) or exc}")
            return fallback
