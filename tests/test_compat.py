"""Modules and pipes written for the original product: `_default_config`, ports named by the job,
shell templates, `%(name)s`, unwired outputs (`JOB.OUTPUT`), `includes:`. Jobs are real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import run_json, write_tree

CONFIG_READER = '''
"""Read _default_config (as the original's scripts did); write every input's text to `merged`
and the config itself to `seen`."""
import argparse, json, yaml

parser = argparse.ArgumentParser()
parser.add_argument("--config", default="_default_config")
config = yaml.safe_load(open(parser.parse_args().config))
with open(config["output"]["merged"], "w") as out:
    for name in sorted(config["input"]):
        paths = config["input"][name]
        for path in paths if isinstance(paths, list) else [paths]:
            out.write(open(path).read())
    out.write(config["parameters"]["sep"] + "\\n")
with open(config["output"]["seen"], "w") as out:
    json.dump(config, out)
'''


@pytest.fixture
def orig(env) -> Path:
    """An app in the original's style (module YAMLs with its keys, data files)."""
    return write_tree(env.apps / "orig", {
        "__init__.py": "", "module/__init__.py": "",
        "module/merge.py": CONFIG_READER,
        "module/merge.yaml": """
            parameters: {sep: {type: string, default: "--"}}
            input_from_job_config: true
            output_from_job_config: true
            cmd: python -m orig.module.merge --config _default_config
            """,
        "data/a.txt": "alpha\n", "data/b.txt": "beta\n", "data/c.txt": "gamma\n",
    })


def by_name(report: dict) -> dict[str, dict]:
    return {job["name"]: job for job in report["jobs"]}


def test_default_config_job_reads_its_paths(env, ml, orig):
    write_tree(orig, {"pipe/merge.yaml": """
        jobs:
          merge:
            module: orig/module/merge
            input: {head: file://orig/data/a.txt, rest: [file://orig/data/b.txt, file://orig/data/c.txt]}
            output: {merged: merged_text, seen: config_seen}
            parameters: {sep: "=="}
        """})
    job = by_name(run_json(ml, "orig/pipe/merge.yaml"))["merge"]
    assert job["result"] == "ran"
    assert Path(job["outputs"]["merged"]).read_text() == "alpha\nbeta\ngamma\n==\n"
    seen = json.loads(Path(job["outputs"]["seen"]).read_text())
    assert seen["module"] == "orig/module/merge"
    assert seen["parameters"] == {"sep": "=="}
    assert isinstance(seen["input"]["rest"], list) and len(seen["input"]["rest"]) == 2  # lists kept as lists
    assert Path(seen["input"]["head"]).read_text() == "alpha\n"  # a real path, not a data name
    assert sorted(seen["output"]) == ["merged", "seen"] and all(p.startswith("/") for p in seen["output"].values())


def test_ports_named_by_the_job_are_still_checked(env, ml, orig):
    write_tree(orig, {"pipe/bad.yaml": """
        jobs:
          merge: {module: orig/module/merge, input: {head: no_such_data}, output: {merged: m}, parameters: {sepp: x}}
        """})
    result = ml("runpipe", "orig/pipe/bad.yaml")
    assert result.code == 2
    assert "unknown data name 'no_such_data'" in result.err and "no parameter 'sepp'" in result.err


def test_shell_template_runs_operators_and_keeps_values_inert(env, ml, orig, tmp_path):
    write_tree(orig, {"module/report.yaml": """
        input: {src: {type: text}}
        output: {out: {type: text}}
        parameters: {note: {type: string, default: ok}}
        cmd: cat src > out && echo "note={note}" >> out || exit 7
        """, "pipe/report.yaml": """
        jobs:
          report: {module: orig/module/report, input: {src: file://orig/data/a.txt}, output: {out: report_text}}
        """})
    marker = tmp_path / "pwned"
    for note in (f"; touch {marker}", f"$(touch {marker})", f"`touch {marker}`", f'" ; touch {marker} #'):
        job = by_name(run_json(ml, "orig/pipe/report.yaml", "--set", f"report.note={note}"))["report"]
        assert job["result"] == "ran"
        assert Path(job["outputs"]["out"]).read_text() == f"alpha\nnote={note}\n"
    assert not marker.exists()
    listing = {row["module"]: row["shell"] for row in json.loads(ml("listmodule", "orig", "--json").out)}
    assert listing == {"orig/module/merge": False, "orig/module/report": True}
    assert "sh" in ml("listmodule", "orig").out.split("orig/module/report")[1].splitlines()[0]


def test_percent_placeholders_are_filled(env, ml, orig):
    write_tree(orig, {"module/greet.yaml": """
        output: {out: {type: text}}
        parameters: {who: {type: string}, greeting: {type: string, default: hello}}
        cmd: python -c "import sys; open(sys.argv[2], 'w').write(sys.argv[1])" %(greeting)s,%(who)s out
        """, "pipe/greet.yaml": """
        jobs:
          greet: {module: orig/module/greet, output: {out: greeting}, parameters: {who: world}}
        """})
    job = by_name(run_json(ml, "orig/pipe/greet.yaml"))["greet"]
    assert Path(job["outputs"]["out"]).read_text() == "hello,world"


def test_unwired_output_is_cached_under_job_dot_output(env, ml, orig):
    write_tree(orig, {"module/split.yaml": """
        input: {src: {type: text}}
        output: {first: {type: text}, second: {type: text}}
        cmd: head -n 1 src > first && tail -n +2 src > second
        """, "module/cat.yaml": """
        input: {src: {type: text}}
        output: {out: {type: text}}
        cmd: cat src > out
        """, "data/two.txt": "one\ntwo\n", "pipe/split.yaml": """
        jobs:
          split: {module: orig/module/split, input: {src: file://orig/data/two.txt}, output: {first: head_line}}
          copy: {module: orig/module/cat, input: {src: split.second}, output: {out: copied}}
        """})
    jobs = by_name(run_json(ml, "orig/pipe/split.yaml"))
    assert {n: j["result"] for n, j in jobs.items()} == {"split": "ran", "copy": "ran"}
    second = Path(jobs["split"]["outputs"]["second"])
    assert second.read_text() == "two\n" and second.is_relative_to(env.home / "cache" / "data")
    assert Path(jobs["copy"]["outputs"]["out"]).read_text() == "two\n"
    again = by_name(run_json(ml, "orig/pipe/split.yaml"))
    assert {n: j["result"] for n, j in again.items()} == {"split": "cached", "copy": "cached"}


def test_output_never_written_and_output_braces_are_fine(env, ml, orig, tmp_path):
    """Like the original's kaggle_submission: an output declared, `output: {}` in the pipe, never written."""
    sent = tmp_path / "sent.log"
    write_tree(orig, {"module/submit.yaml": f"""
        input: {{submission.csv: {{type: file}}}}
        output: {{submit_result: {{type: file}}}}
        parameters: {{message: {{type: string}}}}
        cmd: echo message >> {sent}
        """, "pipe/submit.yaml": """
        jobs:
          submit:
            module: orig/module/submit
            input: {submission.csv: file://orig/data/a.txt}
            output: {}
            parameters: {message: best_run}
        """})
    first = by_name(run_json(ml, "orig/pipe/submit.yaml"))["submit"]
    assert first["result"] == "ran" and first["outputs"] == {}
    assert by_name(run_json(ml, "orig/pipe/submit.yaml"))["submit"]["result"] == "cached"
    assert sent.read_text() == "best_run\n"  # ran once: the rerun found it up to date


def test_includes_add_the_jobs_of_other_pipe_files(env, ml, orig):
    write_tree(orig, {"module/cat.yaml": """
        input: {src: {type: text}}
        output: {out: {type: text}}
        cmd: cat src src > out
        """, "pipe/common.yaml": """
        jobs:
          prepare: {module: orig/module/cat, input: {src: file://orig/data/a.txt}, output: {out: prepared}}
        """, "pipe/main.yaml": """
        includes: [orig/pipe/common.yaml]
        jobs:
          use: {module: orig/module/cat, input: {src: prepared}, output: {out: used}}
        """})
    jobs = by_name(run_json(ml, "orig/pipe/main.yaml"))
    assert {n: j["result"] for n, j in jobs.items()} == {"prepare": "ran", "use": "ran"}
    assert Path(jobs["use"]["outputs"]["out"]).read_text() == "alpha\n" * 4
    assert {r["pipe"]: r["jobs"] for r in json.loads(ml("listpipe", "orig", "--json").out)} == {
        "orig/pipe/common.yaml": 1, "orig/pipe/main.yaml": 2}


@pytest.mark.parametrize("files, message", [
    ({"pipe/a.yaml": "includes: [orig/pipe/b.yaml]\njobs: {x: {module: orig/module/merge}}\n",
      "pipe/b.yaml": "includes: [orig/pipe/a.yaml]\njobs: {y: {module: orig/module/merge}}\n"}, "include cycle"),
    ({"pipe/a.yaml": "includes: [orig/pipe/b.yaml]\njobs: {x: {module: orig/module/merge}}\n",
      "pipe/b.yaml": "jobs: {x: {module: orig/module/merge}}\n"}, "job 'x' is already defined in"),
])
def test_include_cycle_and_job_defined_twice_exit_2_naming_both_files(env, ml, orig, files, message):
    write_tree(orig, files)
    result = ml("runpipe", "orig/pipe/a.yaml")
    assert result.code == 2
    line = next(line for line in result.err.splitlines() if message in line)
    assert str(orig / "pipe" / "a.yaml") in line and str(orig / "pipe" / "b.yaml") in line
    assert "Traceback" not in result.err
    assert env.executed() == [] and not list((env.home / "jobs").glob("*/job.json"))


def test_unknown_include_is_named(env, ml, orig):
    write_tree(orig, {"pipe/a.yaml": "includes: [orig/pipe/nope.yaml]\n"})
    result = ml("runpipe", "orig/pipe/a.yaml")
    assert result.code == 2 and "a.yaml" in result.err and "unknown pipe 'orig/pipe/nope.yaml'" in result.err


def test_default_config_is_yaml_with_file_paths(env, ml, orig):
    """The file itself, as a script of the original opens it: written in the working directory."""
    write_tree(orig, {"module/keep.yaml": """
        input: {src: {type: text}}
        output: {config: {type: yaml}}
        cmd: cp _default_config config
        """, "pipe/keep.yaml": """
        jobs:
          keep: {module: orig/module/keep, input: {src: [file://orig/data/a.txt]}, output: {config: kept}}
        """})
    job = by_name(run_json(ml, "orig/pipe/keep.yaml"))["keep"]
    config = yaml.safe_load(Path(job["outputs"]["config"]).read_text())
    assert config["module"] == "orig/module/keep" and config["parameters"] == {}
    assert [Path(p).read_text() for p in config["input"]["src"]] == ["alpha\n"]
    assert config["output"]["config"].endswith("/outputs/config")


def test_reading_an_optional_output_that_was_not_written_fails_saying_so(env, ml, orig):
    write_tree(orig, {"module/maybe.yaml": """
        output: {out: {type: text, optional: true}}
        cmd: "true"
        """, "module/cat.yaml": """
        input: {src: {type: text}}
        output: {out: {type: text}}
        cmd: cat src > out
        """, "pipe/maybe.yaml": """
        jobs:
          maybe: {module: orig/module/maybe, output: {out: perhaps}}
          reader: {module: orig/module/cat, input: {src: perhaps}, output: {out: read}}
        """})
    for first in (True, False):
        result = ml("runpipe", "orig/pipe/maybe.yaml", "--json")
        assert result.code == 1
        jobs = by_name(json.loads(result.out))
        assert jobs["maybe"]["result"] == ("ran" if first else "cached")  # it succeeded writing nothing
        assert jobs["reader"]["result"] == "failed"
        assert "upstream maybe did not write its output out" in jobs["reader"]["error"]


def test_an_output_written_under_its_port_name_in_the_working_directory_is_taken(env, ml, orig):
    """The original's scripts wrote `NAME` in the job's folder; its find_min copied to `o` so."""
    write_tree(orig, {"module/pick.py": '''
import shutil, yaml
config = yaml.safe_load(open("_default_config"))
for name in config["output"]:
    shutil.copy(config["input"][name][-1], name)   # the bare name, in the working directory
''', "module/pick.yaml": """
        input_from_job_config: true
        output_from_job_config: true
        cmd: python -m orig.module.pick
        """, "pipe/pick.yaml": """
        jobs:
          pick: {module: orig/module/pick, input: {best: [file://orig/data/a.txt, file://orig/data/b.txt]},
                 output: {best: chosen}}
        """})
    job = by_name(run_json(ml, "orig/pipe/pick.yaml"))["pick"]
    assert job["result"] == "ran" and Path(job["outputs"]["best"]).read_text() == "beta\n"
