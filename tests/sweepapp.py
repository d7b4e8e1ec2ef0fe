"""A toy module with a metrics output, for sweep and metrics tests (added to the `toy` app)."""

from __future__ import annotations

from pathlib import Path

from conftest import write_tree

SCORE = '''
"""Write a model and its metrics; record the execution in $TOY_LOG."""
import json, os, sys
value, label, model, metrics, result = sys.argv[1:6]
with open(os.environ["TOY_LOG"], "a") as log:
    log.write(f"score:{value}:{label}\\n")
with open(model, "w") as out:
    out.write(f"model {value} {label}\\n")
with open(metrics, "w") as out:
    if label == "bad":
        out.write("{not: [json")
    else:
        json.dump({"eval": {"acc": float(value)}, "label": label}, out)
with open(result, "w") as out:
    out.write(f"{value}\\nmore lines\\n")
'''
SCORE_YAML = """
output:
  model: {type: file}
  metrics: {type: metrics}
  result: {type: file}
parameters:
  value: {type: float, default: 0.5}
  label: {type: str, default: ""}
cmd: python -m toy.module.score value label model metrics result
"""


def add_score_module(app: Path) -> Path:
    """`toy/module/score`: VALUE LABEL -> model, metrics {eval.acc: VALUE, label}, result (first line VALUE).
    The label `bad` writes metrics that do not parse."""
    return write_tree(app, {"module/score.py": SCORE, "module/score.yaml": SCORE_YAML})
