"""Tests for mlpipe.ops.authoring: module YAML drafted from argparse scripts that are never run."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlpipe.core.errors import UsageError
from mlpipe.core.spec import parse_module
from mlpipe.ops.authoring import describe_script, render_module_yaml, write_module_yaml

FILE_REQUIRED = {"type": "file", "optional": False, "datafile": True}
FILE_OPTIONAL = {"type": "file", "optional": True, "datafile": True}

# A classic script: parser at module level; runs only under `if __name__ == "__main__"`.
BOW_MODEL = '''
"""Train a bag-of-words model."""
import argparse
import json
from pathlib import Path

parser = argparse.ArgumentParser(description="bag of words")
parser.add_argument("train_data", help="input: training examples, one per line")
parser.add_argument("model", help="Output: the trained model")
parser.add_argument("--num_epochs", type=int, default=5, help="how many passes")
parser.add_argument("--learning-rate", type=float, default=0.01)
parser.add_argument("--loss", choices=["hinge", "log"], default="hinge")
parser.add_argument("-v", "--verbose", action="store_true")
parser.add_argument("--no_shuffle", dest="shuffle", action="store_false")

if __name__ == "__main__":
    args = parser.parse_args()
    examples = Path(args.train_data).read_text().splitlines()
    Path(args.model).write_text(json.dumps({**vars(args), "examples": len(examples)}))
'''

# Parser built in create_parser(), an argument group, a module constant; importing it writes a file.
PREPROCESS = """
import argparse
from pathlib import Path

DEFAULT_VOCAB = 20000
Path(__file__).with_name("imported.txt").write_text("the script ran")


def create_parser():
    parser = argparse.ArgumentParser()
    files = parser.add_argument_group("files")
    files.add_argument("--raw_file", required=True)
    files.add_argument("--stopword_file")
    files.add_argument("--out_dir", help="where the cleaned shards go")
    parser.add_argument("-n", "--max-lines", type=int, help="stop after this many lines")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--stopwords", nargs="+", default=["a", "the"])
    parser.add_argument("--vocab_size", default=DEFAULT_VOCAB)
    parser.add_argument("--lowercase", action="store_true", help="lowercase the text")
    parser.add_argument("--version", action="version", version="1.0")
    return parser


def main():
    create_parser().parse_args()


if __name__ == "__main__":
    main()
"""

# Parser named `ap` inside main(); importing the script raises.
EVALUATE = """
import argparse

raise RuntimeError("evaluate.py must not be imported")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", help="Input model checkpoint")
    ap.add_argument("predictions", help="where to write the OUTPUT predictions")
    ap.add_argument("--batch-size", type=int, default="32", help="batch size (a param)")
    ap.add_argument("--device", choices=["cpu", "cuda"])
    ap.add_argument("--threshold", type=float, default=1)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--label_map", type=argparse.FileType("r"))
    ap.add_argument("--report", type=argparse.FileType("w"), help="a summary as text")
    ap.add_argument("--layers", nargs=2, type=int, default=(64, 32))
    return ap.parse_args()
"""

SCRIPTS = [
    pytest.param(
        "text_classification/module/bow_model.py",
        BOW_MODEL,
        {
            "input": {"train_data": FILE_REQUIRED},
            "output": {"model": FILE_REQUIRED},
            "parameters": {
                "num_epochs": {"type": "int", "default": 5},
                "learning_rate": {"type": "float", "default": 0.01},
                "loss": {"type": "str", "default": "hinge", "choices": ["hinge", "log"]},
                "verbose": {"type": "bool", "default": False, "flag": "--verbose"},
                "no_shuffle": {"type": "bool", "default": False, "flag": "--no_shuffle"},
            },
            "cmd": "python -m text_classification.module.bow_model train_data model --num_epochs num_epochs"
            " --learning-rate learning_rate --loss loss verbose no_shuffle",
        },
        [
            "guessed: num_epochs as parameter (type is int)",
            "guessed: learning_rate as parameter (type is float)",
            "guessed: loss as parameter (it has choices)",
            "guessed: verbose as parameter (action is store_true)",
            "guessed: no_shuffle as parameter (action is store_false)",
        ],
        id="module-level-parser",
    ),
    pytest.param(
        "nlp/module/preprocess.py",
        PREPROCESS,
        {
            "input": {"raw_file": FILE_REQUIRED, "stopword_file": FILE_OPTIONAL},
            "output": {"out_dir": FILE_OPTIONAL},
            "parameters": {
                "max_lines": {"type": "int", "optional": True},
                "lang": {"type": "str", "default": "en"},
                "stopwords": {"type": "list", "default": ["a", "the"]},
                "vocab_size": {"type": "int", "default": 20000},
                "lowercase": {"type": "bool", "default": False, "flag": "--lowercase"},
            },
            "cmd": "python -m nlp.module.preprocess --raw_file raw_file --stopword_file stopword_file"
            " --out_dir out_dir --max-lines max_lines --lang lang --stopwords stopwords --vocab_size vocab_size"
            " lowercase",
        },
        [
            "guessed: raw_file as input (name ends in _file)",
            "guessed: stopword_file as input (name ends in _file)",
            "guessed: out_dir as output (name starts with out)",
            "guessed: max_lines as parameter (type is int)",
            "guessed: lang as parameter (no input/output hint in its name or help)",
            "guessed: stopwords as parameter (no input/output hint in its name or help)",
            "guessed: vocab_size as parameter (default is 20000)",
            "guessed: lowercase as parameter (action is store_true)",
        ],
        id="create_parser-with-group",
    ),
    pytest.param(
        "vision/module/evaluate.py",
        EVALUATE,
        {
            "input": {"checkpoint": FILE_REQUIRED, "label_map": FILE_OPTIONAL},
            "output": {"predictions": FILE_REQUIRED, "report": FILE_OPTIONAL},
            "parameters": {
                "batch_size": {"type": "int", "default": 32},
                "device": {"type": "str", "choices": ["cpu", "cuda"], "optional": True},
                "threshold": {"type": "float", "default": 1.0},
                "seed": {"type": "int"},
                "layers": {"type": "list", "default": [64, 32]},
            },
            "cmd": "python -m vision.module.evaluate checkpoint predictions --batch-size batch_size --device device"
            " --threshold threshold --seed seed --label_map label_map --report report --layers layers",
        },
        [
            "guessed: device as parameter (it has choices)",
            "guessed: threshold as parameter (type is float)",
            "guessed: seed as parameter (type is int)",
            "guessed: label_map as input (type is FileType('r'))",
            "guessed: report as output (type is FileType('w'))",
            "guessed: layers as parameter (type is int)",
        ],
        id="parser-inside-main",
    ),
]


def write_script(root: Path, relpath: str, source: str) -> Path:
    path = root / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    return path


def snippet(*arguments: str) -> str:
    lines = ["import argparse", "parser = argparse.ArgumentParser()"]
    return "\n".join(lines + [f"parser.add_argument({a})" for a in arguments]) + "\n"


def describe_snippet(*arguments: str) -> Any:
    return describe_script(snippet(*arguments), Path("app/module/tool.py"))


@pytest.mark.parametrize(("relpath", "source", "expected", "guesses"), SCRIPTS)
def test_interface_and_cmd_are_read_without_running_the_script(
    tmp_path: Path, relpath: str, source: str, expected: dict, guesses: list[str]
) -> None:
    script = write_script(tmp_path, relpath, source)

    text, target, notes = write_module_yaml(script)

    assert target == script.with_suffix(".yaml")
    assert target.read_text(encoding="utf-8") == text
    assert list(yaml.safe_load(text)) == ["input", "output", "parameters", "cmd"]
    assert yaml.safe_load(text) == expected
    assert [n for n in notes if n.startswith("guessed: ")] == guesses
    assert not (script.parent / "imported.txt").exists()  # the script's top-level code never ran
    app, _, name = relpath.removesuffix(".py").split("/")
    module = parse_module(text, str(target), f"{app}/module/{name}")
    assert set(module.params) == set(expected["parameters"])


@pytest.mark.parametrize(("relpath", "source", "expected", "guesses"), SCRIPTS)
def test_yaml_round_trips(relpath: str, source: str, expected: dict, guesses: list[str]) -> None:
    text = render_module_yaml(describe_script(textwrap.dedent(source), Path("/apps") / relpath))

    loaded = yaml.safe_load(text)

    assert yaml.safe_dump(loaded, sort_keys=False, default_flow_style=None, width=1 << 16) == text
    assert "\n  " not in text.split("cmd:")[1]  # a long cmd stays on one line


@pytest.mark.parametrize(
    ("argument", "section", "name", "guess"),
    [
        ('"--train_file"', "input", "train_file", "guessed: train_file as input (name ends in _file)"),
        ('"--data-dir"', "input", "data_dir", "guessed: data_dir as input (name ends in _dir)"),
        ('"--input"', "input", "input", "guessed: input as input (name starts with input)"),
        ('"train"', "input", "train", "guessed: train as input (name starts with train)"),
        ('"--output"', "output", "output", "guessed: output as output (name starts with out)"),
        ('"--best_model"', "output", "best_model", "guessed: best_model as output (name contains model)"),
        ('"--log", type=argparse.FileType("a")', "output", "log", "guessed: log as output (type is FileType('a'))"),
        ('"--vocab", help="The INPUT vocabulary"', "input", "vocab", None),
        ('"--data_dir", help="output directory"', "output", "data_dir", None),
        ('"--lr", help="learning rate param"', "parameters", "lr", None),
        ('"--input_size", default=9', "parameters", "input_size", "guessed: input_size as parameter (default is 9)"),
        ('"--k", type=int, help="number of input words"', "parameters", "k", "guessed: k as parameter (type is int)"),
        (
            '"--quiet", action="store_true", help="no output"',
            "parameters",
            "quiet",
            "guessed: quiet as parameter (action is store_true)",
        ),
        (
            '"--rate", help="maximum throughput"',
            "parameters",
            "rate",
            "guessed: rate as parameter (no input/output hint in its name or help)",
        ),
        ('"-j"', "parameters", "j", "guessed: j as parameter (no input/output hint in its name or help)"),
    ],
)
def test_classification(argument: str, section: str, name: str, guess: str | None) -> None:
    draft = describe_snippet(argument)

    document = yaml.safe_load(render_module_yaml(draft))

    assert list(document[section]) == [name]
    assert [n for n in draft.notes if n.startswith("guessed: ")] == ([guess] if guess else [])


@pytest.mark.parametrize(
    ("arguments", "parameters", "cmd_tail", "note"),
    [
        (
            ['"--shuffle", action="store_false"'],
            {"no_shuffle": {"type": "bool", "default": False, "flag": "--shuffle"}},
            "no_shuffle",
            "line 3: --shuffle turns shuffle off (store_false), so it is the bool parameter no_shuffle (default false):"
            " true passes --shuffle, false leaves it out",
        ),
        (
            ['"--fast", type=bool, default=False'],
            {"fast": {"type": "bool", "default": False}},
            "--fast fast",
            "line 3: --fast uses type=bool, which reads any non-empty text (also 'False') as True;"
            " consider action='store_true'",
        ),
        (
            ['"--count", action="count", default=0'],
            {},
            "",
            "line 3: skipped --count: action='count' has no YAML form",
        ),
        (
            ['"--color", action=argparse.BooleanOptionalAction'],
            {},
            "",
            "line 3: skipped --color: action=argparse.BooleanOptionalAction has no YAML form",
        ),
        (
            ['"--seed", type=int, default=os.getpid()'],
            {"seed": {"type": "int", "optional": True}},
            "--seed seed",
            "line 3: default=os.getpid() is not a literal; ignored",
        ),
        (
            ['"--when", type=parse_date'],
            {"when": {"type": "str", "optional": True}},
            "--when when",
            "line 3: type=parse_date is not int, float, str or bool; declared as str",
        ),
        (
            ['"--tag", default="a"', '"--tag", default="b"'],
            {"tag": {"type": "str", "default": "a"}},
            "--tag tag",
            "line 4: skipped --tag: name 'tag' is taken",
        ),
        (
            ["*NAMES"],
            {},
            "",
            "line 3: skipped parser.add_argument(*NAMES): its option names are not literal strings",
        ),
        (['"--help2", action="help"', '"--version", action="version"'], {}, "", None),
    ],
)
def test_arguments_needing_a_note(arguments: list[str], parameters: dict, cmd_tail: str, note: str | None) -> None:
    draft = describe_snippet(*arguments)

    document = yaml.safe_load(render_module_yaml(draft))

    assert document["parameters"] == parameters
    assert document["cmd"] == f"python -m app.module.tool {cmd_tail}".rstrip()
    other_notes = [n for n in draft.notes if not n.startswith("guessed: ")]
    assert other_notes == ([note] if note else [])


def test_generated_cmd_runs_the_script(tmp_path: Path) -> None:
    script = write_script(tmp_path, "text_classification/module/bow_model.py", BOW_MODEL)
    text, _, _ = write_module_yaml(script)
    module = yaml.safe_load(text)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "train.txt").write_text("good movie\nbad movie\nfine\n")
    values = {
        "train_data": "train.txt",
        "model": "model.json",
        "num_epochs": 3,
        "learning_rate": 0.5,
        "loss": "log",
        "verbose": True,
        "no_shuffle": False,
    }

    argv = fill_cmd(module, values)
    result = subprocess.run(
        argv, cwd=scratch, env={**os.environ, "PYTHONPATH": str(tmp_path)}, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert "--no_shuffle" not in argv
    produced = json.loads((scratch / "model.json").read_text())
    assert produced == {
        "train_data": "train.txt",
        "model": "model.json",
        "num_epochs": 3,
        "learning_rate": 0.5,
        "loss": "log",
        "verbose": True,
        "shuffle": True,
        "examples": 3,
    }


def fill_cmd(module: dict, values: dict[str, Any]) -> list[str]:
    """Substitute values into `cmd` by hand: names become values, a false flag disappears."""
    flags = {name: spec["flag"] for name, spec in module["parameters"].items() if "flag" in spec}
    argv = []
    for token in shlex.split(module["cmd"]):
        if token in flags:
            argv += [flags[token]] if values[token] else []
        else:
            argv.append(str(values.get(token, token)))
    return [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]


def test_existing_yaml_is_kept_without_force(tmp_path: Path) -> None:
    script = write_script(tmp_path, "nlp/module/preprocess.py", PREPROCESS)
    target = script.with_suffix(".yaml")
    target.write_text("cmd: hand-written\n")

    with pytest.raises(UsageError, match="--force") as caught:
        write_module_yaml(script)

    assert str(target) in str(caught.value)
    assert caught.value.exit_code == 2
    assert target.read_text() == "cmd: hand-written\n"
    text, _, _ = write_module_yaml(script, force=True)
    assert target.read_text(encoding="utf-8") == text


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    script = write_script(tmp_path, "nlp/module/preprocess.py", PREPROCESS)

    text, target, notes = write_module_yaml(script, dry_run=True)

    assert "cmd: python -m nlp.module.preprocess" in text
    assert not target.exists()
    assert sorted(p.name for p in script.parent.iterdir()) == ["preprocess.py"]
    target.write_text("cmd: hand-written\n")
    _, _, notes = write_module_yaml(script, dry_run=True)
    assert notes[-1] == "preprocess.yaml already exists; writing it would need --force"
    assert target.read_text() == "cmd: hand-written\n"


@pytest.mark.parametrize(
    ("relpath", "source", "message"),
    [
        ("app/module/broken.py", "import argparse\nparser = (\nif x:\n", r"broken\.py:2: cannot parse the script"),
        ("app/module/plain.py", "print('hello')\n", r"plain\.py: no parser\.add_argument\(\.\.\.\) call found"),
        ("app/scripts/tool.py", snippet('"--x"'), r"tool\.py: a module script must be APP/module/NAME\.py"),
        ("my-app/module/tool.py", snippet('"--x"'), r"'python -m my-app\.module\.tool' cannot run it"),
        ("app/module/missing.py", None, r"missing\.py: no such script"),
    ],
)
def test_usage_errors_name_the_file(tmp_path: Path, relpath: str, source: str | None, message: str) -> None:
    script = write_script(tmp_path, relpath, source) if source is not None else tmp_path / relpath

    with pytest.raises(UsageError, match=message) as caught:
        write_module_yaml(script)

    assert str(script) in str(caught.value)
    assert not script.with_suffix(".yaml").exists()


def test_cmd_follows_source_order_even_for_nested_calls() -> None:
    source = textwrap.dedent(
        """
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument("first")
        if True:
            parser.add_argument("second")
        parser.add_argument("third")
        """
    )

    draft = describe_script(source, Path("app/module/tool.py"))

    assert draft.cmd == "python -m app.module.tool first second third"
