"""Metrics outputs (`type: metrics`): a JSON or YAML object, flattened to `a.b` keys (pure).

    {"accuracy": 0.9, "per_class": {"neg": 0.8}}  ->  {"accuracy": 0.9, "per_class.neg": 0.8}

Values must be numbers, strings or booleans; a document is at most 1 MiB.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

METRICS_TYPE = "metrics"
MAX_BYTES = 1 << 20
Scalar = int | float | str | bool


class MetricsError(ValueError):
    """A metrics document that is not an object of numbers, strings and booleans."""


def parse_metrics(data: bytes) -> dict[str, Scalar]:
    """The flattened metrics of a JSON (or YAML) document; MetricsError says what is wrong."""
    if len(data) > MAX_BYTES:
        raise MetricsError(f"{len(data):,} bytes, more than the limit of {MAX_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MetricsError("not UTF-8 text") from None
    try:
        loaded = json.loads(text)
    except ValueError:
        loaded = _yaml(text)
    if not isinstance(loaded, dict):
        raise MetricsError(f"expected a JSON or YAML object, got {type(loaded).__name__}")
    flat: dict[str, Scalar] = {}
    _flatten(loaded, "", flat)
    return flat


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise MetricsError("neither JSON nor YAML") from None


def _flatten(data: Mapping[Any, Any], prefix: str, flat: dict[str, Scalar]) -> None:
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten(value, f"{name}.", flat)
        elif isinstance(value, bool | int | str):
            flat[name] = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise MetricsError(f"{name}: {value} is not a finite number")
            flat[name] = value
        else:
            raise MetricsError(f"{name}: expected a number, a string or a boolean, got {type(value).__name__}")


def merge_outputs(per_output: Mapping[str, dict[str, Scalar]]) -> dict[str, Scalar]:
    """One job's metrics: one output's keys as they are; several outputs' keys prefixed `OUTPUT.`."""
    if len(per_output) == 1:
        return dict(next(iter(per_output.values())))
    return {f"{out}.{key}": value for out, flat in per_output.items() for key, value in flat.items()}


def lookup(metrics: Mapping[str, Scalar], key: str, outputs: list[str]) -> Scalar | None:
    """`key` in a job's metrics; `OUTPUT.key` also finds `key` when the job has one metrics output."""
    if key in metrics:
        return metrics[key]
    head, _, rest = key.partition(".")
    if len(outputs) == 1 and head == outputs[0] and rest in metrics:
        return metrics[rest]
    return None
