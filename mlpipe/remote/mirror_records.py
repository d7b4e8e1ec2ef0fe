"""Job records from the S3 mirror (`PREFIX/jobs/<job_hash>.json`), kept once fetched.

A record in the mirror is written once per job hash, so a copy never goes stale: fetched copies
live in `state/mirror-jobs/` (not in `jobs/`, which holds only what ran here) and are read from
there afterwards. This is how a second machine sees the metrics of jobs it only pulled.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mlpipe.core.errors import StoreError
from mlpipe.home.settings import Settings
from mlpipe.remote.mirror import THREADS, S3Mirror, warn


def mirror_records_dir(settings: Settings) -> Path:
    return settings.state_dir / "mirror-jobs"


def read_mirror_records(settings: Settings, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The mirror's records of `job_ids` (those it has); a mirror that fails warns once and gives {}."""
    folder = mirror_records_dir(settings)
    found: dict[str, dict[str, Any]] = {}
    missing = []
    for job_id in job_ids:
        try:
            found[job_id] = json.loads((folder / f"{job_id}.json").read_text())
        except (OSError, ValueError):
            missing.append(job_id)
    if not missing or not settings["S3_MIRROR"]:
        return found
    from mlpipe.remote import s3
    from mlpipe.store.atomic import write_bytes_atomic

    try:
        with S3Mirror(settings) as mirror:
            present = {info.key for info in s3.list_objects(mirror.client, mirror.bucket, f"{mirror.prefix}jobs/",
                                                            StoreError)}
            wanted = [j for j in missing if mirror.record_key(j) in present]

            def fetch(job_id: str) -> tuple[str, bytes]:
                key = mirror.record_key(job_id)
                with s3.translated(mirror.client, f"s3://{mirror.bucket}/{key}", StoreError):
                    return job_id, mirror.client.get_object(Bucket=mirror.bucket, Key=key)["Body"].read()

            with ThreadPoolExecutor(THREADS) as pool:
                bodies = list(pool.map(fetch, wanted))
            for job_id, body in bodies:
                try:
                    found[job_id] = json.loads(body)
                except ValueError:
                    continue
                write_bytes_atomic(folder / f"{job_id}.json", body)
    except (StoreError, OSError) as exc:
        warn(f"S3 mirror {settings['S3_MIRROR']} cannot be read, showing local records only: "
             f"{getattr(exc, 'strerror', None) or exc}")
    return found
