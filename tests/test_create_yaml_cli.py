"""`ml create_yaml SCRIPT.py`: through the CLI, on realistic scripts whose modules then run in a pipe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import write_tree

# A parser at module level: positional input and output, a type, a default, choices, store_true.
WORDCOUNT = '''
"""Count words (or characters) of a text file."""
import argparse
import collections
import json

parser = argparse.ArgumentParser(description="word counts")
parser.add_argument("train_data", help="input: the text to count")
parser.add_argument("counts", help="output: counts as JSON")
parser.add_argument("--min_count", type=int, default=1, help="drop rarer tokens")
parser.add_argument("--unit", choices=["words", "chars"], default="words")
parser.add_argument("--lower", action="store_true", help="lowercase first")

if __name__ == "__main__":
    args = parser.parse_args()
    text = open(args.train_data).read()
    text = text.lower() if args.lower else text
    tokens = text.split() if args.unit == "words" else [c for c in text if not c.isspace()]
    counts = {k: n for k, n in collections.Counter(tokens).items() if n >= args.min_count}
    json.dump(counts, open(args.counts, "w"), sort_keys=True)
'''

# The parser comes from create_parser(), as the original product expected; store_false; optional input.
CLEAN = '''
import argparse


def create_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("--raw_file", required=True)
    parser.add_argument("--stopword_file", help="input: words to drop")
    parser.add_argument("--out_file", required=True)
    parser.add_argument("--max-lines", type=int, help="stop after this many lines")
    parser.add_argument("--no_dedupe", dest="dedupe", action="store_false")
    return parser


def main():
    args = create_parser().parse_args()
    stop = set(open(args.stopword_file).read().split()) if args.stopword_file else set()
    lines = open(args.raw_file).read().splitlines()[: args.max_lines]
    kept = [" ".join(w for w in line.split() if w not in stop) for line in lines]
    if args.dedupe:
        kept = list(dict.fromkeys(kept))
    open(args.out_file, "w").write("\\n".join(kept) + "\\n")


if __name__ == "__main__":
    main()
'''

# The parser is built inside main(); a float parameter; a list input (nargs="+").
MERGE = '''
import argparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", required=True, help="the merged file")
    ap.add_argument("--weight", type=float, default=1.0)
    ap.add_argument("input_files", nargs="+", help="input files to merge")
    args = ap.parse_args()
    with open(args.output, "w") as out:
        for path in args.input_files:
            out.write(f"{args.weight} " + open(path).read())


if __name__ == "__main__":
    main()
'''

DATA = {"data/text.txt": "the cat\nThe dog\nthe cat\n", "data/stop.txt": "the\n"}


def write_script(toy: Path, name: str, source: str) -> Path:
    write_tree(toy, {f"module/{name}.py": source, **DATA})
    return toy / "module" / f"{name}.py"


def test_dry_run_prints_yaml_and_notes_and_writes_nothing(env, ml, toy):
    script = write_script(toy, "wordcount", WORDCOUNT)
    result = ml("create_yaml", str(script), "--dry_run")
    assert result.code == 0, result.err
    module = yaml.safe_load(result.out)
    assert module["input"] == {"train_data": {"type": "file", "optional": False, "datafile": True}}
    assert module["output"] == {"counts": {"type": "file", "optional": False, "datafile": True}}
    assert module["parameters"] == {"min_count": {"type": "int", "default": 1},
                                    "unit": {"type": "str", "default": "words", "choices": ["words", "chars"]},
                                    "lower": {"type": "bool", "default": False, "flag": "--lower"}}
    assert module["cmd"] == ("python -m toy.module.wordcount train_data counts --min_count min_count"
                             " --unit unit lower")
    assert "note: guessed: unit as parameter (it has choices)" in result.err
    assert not script.with_suffix(".yaml").exists()


def test_existing_yaml_needs_force(env, ml, toy):
    script = write_script(toy, "wordcount", WORDCOUNT)
    first = ml("create_yaml", str(script))
    assert first.code == 0 and "wrote" in first.err and "module toy/module/wordcount" in first.err
    script.with_suffix(".yaml").write_text("# edited by hand\n" + script.with_suffix(".yaml").read_text())
    again = ml("create_yaml", str(script))
    assert again.code == 2 and "--force" in again.err
    assert script.with_suffix(".yaml").read_text().startswith("# edited by hand")
    assert ml("create_yaml", str(script), "--force").code == 0
    assert not script.with_suffix(".yaml").read_text().startswith("# edited")


@pytest.mark.parametrize("path, message", [
    ("nowhere/module/none.py", "no such script"),
    ("toy/data/text.txt", "must be APP/module/NAME.py"),
])
def test_bad_scripts_exit_2(env, ml, toy, path, message):
    write_tree(toy, DATA)
    result = ml("create_yaml", str(env.apps / path))
    assert result.code == 2 and message in result.err


@pytest.mark.parametrize("name, source, job, expected", [
    ("wordcount", WORDCOUNT,
     {"input": {"train_data": "file://toy/data/text.txt"}, "output": {"counts": "c"},
      "parameters": {"lower": True, "min_count": 2}},
     json.dumps({"cat": 2, "the": 3}, sort_keys=True)),
    ("clean", CLEAN,
     {"input": {"raw_file": "file://toy/data/text.txt", "stopword_file": "file://toy/data/stop.txt"},
      "output": {"out_file": "c"}},
     "cat\nThe dog\n"),
    ("merge", MERGE,
     {"input": {"input_files": ["file://toy/data/stop.txt", "file://toy/data/stop.txt"]},
      "output": {"output": "c"}, "parameters": {"weight": 0.5}},
     "0.5 the\n0.5 the\n"),
])
def test_generated_module_runs_in_a_pipe(env, ml, toy, name, source, job, expected):
    script = write_script(toy, name, source)
    assert ml("create_yaml", str(script)).code == 0
    write_tree(toy, {f"pipe/{name}.yaml": yaml.safe_dump({"jobs": {name: {"module": f"toy/module/{name}", **job}}})})
    result = ml("runpipe", f"toy/pipe/{name}.yaml", "--json")
    assert result.code == 0, result.err
    [ran] = json.loads(result.out)["jobs"]
    assert ran["result"] == "ran"
    assert Path(next(iter(ran["outputs"].values()))).read_text() == expected


def test_argparse_choices_are_kept_and_checked_before_running(env, ml, toy):
    script = write_script(toy, "wordcount", WORDCOUNT)
    assert ml("create_yaml", str(script)).code == 0
    job = {"module": "toy/module/wordcount", "input": {"train_data": "file://toy/data/text.txt"},
           "output": {"counts": "c"}, "parameters": {"unit": "lines"}}
    write_tree(toy, {"pipe/units.yaml": yaml.safe_dump({"jobs": {"count": job}})})
    result = ml("runpipe", "toy/pipe/units.yaml")
    assert result.code == 2
    assert "units.yaml: job 'count': parameters.unit: 'lines' is not one of ['words', 'chars']" in result.err
    assert env.executed() == [] and not list((env.home / "jobs").iterdir())
    job["parameters"]["unit"] = "chars"
    write_tree(toy, {"pipe/units.yaml": yaml.safe_dump({"jobs": {"count": job}})})
    assert ml("runpipe", "toy/pipe/units.yaml").code == 0
