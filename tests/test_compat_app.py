"""End to end with the real `ml` executable: an app written in the original product's style,
added with `ml addapp ... --app_name mlpipe` (the name its pipes use), planned and run unchanged.

Its scripts run as `python -m core.module.NAME`: `PYTHONPATH` holds the folder containing the
app directory (named `core`, as in the original's checkout)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from conftest import ml_process, write_tree

SPLIT = '''
import argparse, random
parser = argparse.ArgumentParser()
parser.add_argument("--ratio", type=float)
parser.add_argument("--random_seed", type=int)
parser.add_argument("input_file"); parser.add_argument("output_1"); parser.add_argument("output_2")
args = parser.parse_args()
lines = open(args.input_file).read().splitlines(True)
random.Random(args.random_seed).shuffle(lines)
cut = int(len(lines) * args.ratio)
open(args.output_1, "w").writelines(lines[:cut]); open(args.output_2, "w").writelines(lines[cut:])
'''

SCORE = '''
import argparse
parser = argparse.ArgumentParser()
parser.add_argument("--weight", type=float)
parser.add_argument("train"); parser.add_argument("model"); parser.add_argument("score")
args = parser.parse_args()
rows = [float(x) for x in open(args.train).read().split()]
open(args.model, "w").write(f"weight={args.weight}\\n")
open(args.score, "w").write(f"{abs(sum(rows) / len(rows) - args.weight)}\\n")
'''

PICK = '''
"""Like the original's find_min: read _default_config, copy the model with the lowest score."""
import shutil, yaml
config = yaml.safe_load(open("_default_config"))
scores = [float(open(p).readline()) for p in config["input"]["score"]]
best = scores.index(min(scores))
for name, path in config["output"].items():
    shutil.copy(config["input"][name][best], path)
'''

APP = {
    "__init__.py": "", "module/__init__.py": "",
    "module/unzip.yaml": """
        input: {zipfile.zip: {type: file, datafile: true}}
        output: {unzipfile: {type: file, datafile: true}}
        cmd: unzip zipfile.zip -d unzip_d && mv unzip_d/* unzipfile
        """,
    "module/split_lines.py": SPLIT,
    "module/split_lines.yaml": """
        input: {input_file: {type: file, datafile: true}}
        output:
          output_1: {type: file, datafile: true}
          output_2: {type: file, datafile: true}
        parameters:
          ratio: {type: float, default: 0.8}
          random_seed: {type: int, default: 1001}
        cmd: python -m core.module.split_lines --ratio ratio --random_seed random_seed input_file output_1 output_2
        """,
    "module/score.py": SCORE,
    "module/score.yaml": """
        input: {train: {type: file}}
        output: {model: {type: model}, score: {type: file}}
        parameters: {weight: {type: float}}
        cmd: python -m core.module.score --weight %(weight)s train model score
        """,
    "module/pick_min.py": PICK,
    "module/pick_min.yaml": """
        parameters: {}
        input_from_job_config: true
        output_from_job_config: true
        cmd: python -m core.module.pick_min --config _default_config
        """,
    "module/submit.yaml": """
        input: {submission.csv: {type: file, datafile: true}}
        output: {submit_result: {type: file, datafile: true}}
        parameters: {message: {type: string}}
        cmd: echo %(message)s > submit_result && cat submission.csv >> submit_result
        """,
    "pipe/data.yaml": """
        version: 1.0
        jobs:
          unzip_train:
            module: mlpipe/module/unzip
            input: {zipfile.zip: file://mlpipe/data/train.zip}
            output: {unzipfile: train.txt}
            parameters: {}
          split:
            module: mlpipe/module/split_lines
            input: {input_file: train.txt}
            output: {output_1: part_train}
            parameters: {ratio: 0.5}
        """,
    "pipe/search.yaml": """
        version: 1.0
        includes: [mlpipe/pipe/data.yaml]
        jobs:
          score_low:
            module: mlpipe/module/score
            input: {train: part_train}
            output: {model: model_low, score: score_low}
            parameters: {weight: 1.0}
          score_high:
            module: mlpipe/module/score
            input: {train: part_train}
            output: {model: model_high, score: score_high}
            parameters: {weight: 4.0}
          pick:
            module: mlpipe/module/pick_min
            input: {score: [score_low, score_high], model: [model_low, model_high]}
            output: {model: best_model}
          submit:
            module: mlpipe/module/submit
            input: {submission.csv: best_model}
            output: {}
            parameters: {message: "best run; $(touch PWNED)"}
        """,
}


def test_an_app_in_the_original_style_runs_end_to_end(env, tmp_path):
    app = write_tree(tmp_path / "checkout" / "core", APP)
    (app / "data").mkdir()
    with zipfile.ZipFile(app / "data" / "train.zip", "w") as archive:
        archive.writestr("train.csv", "".join(f"{n}\n" for n in (1, 2, 3, 4, 5, 6)))

    assert ml_process("addapp", str(app), "--app_name", "mlpipe").returncode == 0
    modules = {m["module"]: m for m in json.loads(ml_process("listmodule", "mlpipe", "--json").stdout)}
    assert len(modules) == 5 and not any("error" in m for m in modules.values())
    assert {name for name, m in modules.items() if m["shell"]} == {"mlpipe/module/unzip", "mlpipe/module/submit"}

    planned = ml_process("startpipe", "mlpipe/pipe/search.yaml", "--json")
    assert planned.returncode == 0, planned.stderr
    assert [j["name"] for j in json.loads(planned.stdout)["jobs"]][:2] == ["unzip_train", "split"]

    run = ml_process("runpipe", "mlpipe/pipe/search.yaml", "--json")
    assert run.returncode == 0, run.stderr
    jobs = {j["name"]: j for j in json.loads(run.stdout)["jobs"]}
    assert {j["result"] for j in jobs.values()} == {"ran"} and len(jobs) == 6
    part = Path(jobs["split"]["outputs"]["output_1"]).read_text().split()
    assert len(part) == 3  # ratio 0.5 of 6 lines; output_2 is cached as split.output_2
    assert sorted(part + Path(jobs["split"]["outputs"]["output_2"]).read_text().split()) == list("123456")
    mean = sum(map(int, part)) / 3
    expected = "weight=1.0\n" if abs(mean - 1.0) < abs(mean - 4.0) else "weight=4.0\n"
    assert Path(jobs["pick"]["outputs"]["model"]).read_text() == expected
    receipt = Path(jobs["submit"]["outputs"]["submit_result"]).read_text()
    assert receipt == f"best run; $(touch PWNED)\n{expected}"  # the value was data, not code
    assert not list(env.home.rglob("PWNED")) and not list(tmp_path.rglob("PWNED"))

    again = ml_process("runpipe", "mlpipe/pipe/search.yaml")
    assert again.returncode == 0 and "6 jobs up to date, nothing to do" in again.stderr

    pick_id = jobs["pick"]["job_id"]
    shown = ml_process("viewjob", "--job_id", pick_id[:8])
    assert shown.returncode == 0 and "mlpipe/module/pick_min" in shown.stdout and "succeeded" in shown.stdout
    assert ml_process("deletepipe", "mlpipe/pipe/search.yaml").returncode == 0
    assert json.loads(ml_process("listjob", "--json").stdout) == []
