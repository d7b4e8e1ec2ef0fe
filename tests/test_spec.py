"""Tests for mlpipe.core.spec: module and pipe YAML (as text) -> dataclasses, or a located SpecError."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mlpipe.core.errors import SpecError, UserError
from mlpipe.core.spec import (
    Binding,
    JobSpec,
    ModuleSpec,
    ParamSpec,
    PipeSpec,
    PortSpec,
    Ref,
    convert_param,
    parse_module,
    parse_pipe,
)

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_APP = REPO / "apps" / "text_classification"
MODULE_FILE = "apps/demo/module/m.yaml"
PIPE_FILE = "apps/demo/pipe/p.yaml"


def module(text: str) -> ModuleSpec:
    return parse_module(textwrap.dedent(text), MODULE_FILE, "demo/module/m")


def pipe(text: str) -> PipeSpec:
    return parse_pipe(textwrap.dedent(text), PIPE_FILE, "demo/pipe/p.yaml")


# --- valid examples --------------------------------------------------------------------------

DESIGN_MODULE = """
input:
  train_data: {type: text, optional: false, datafile: true}
output:
  model: {type: sk_sgd_pickle, optional: false, datafile: true}
parameters:
  num_epochs: {type: int, default: 5}
source: [module/bow_model.py]   # optional: extra files (globs, relative to the app) that define the code
cmd: python -m text_classification.module.bow_model --num_epochs num_epochs train_data model
"""

# The seed README's module, written with the block style the README shows (indentation restored).
SEED_MODULE = """
input:
  train_data:
    type: text
    optional: false
    datafile: true
  test_data:
    type: text
    optional: false
    datafile: true
  category_label:
    type: text
    optional: false
    datafile: true
output:
  model:
    type: sk_sgd_pickle
    optional: false
    datafile: true
parameters:
  num_epochs:
    type: int
    default: 5
cmd: python -m text_classification.module.bow_model --num_epochs num_epochs category_label train_data test_data model
"""

TEXT = PortSpec("train_data", "text", False, True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DESIGN_MODULE, ModuleSpec(
            "demo/module/m", MODULE_FILE,
            {"train_data": TEXT},
            {"model": PortSpec("model", "sk_sgd_pickle", False, True)},
            {"num_epochs": ParamSpec("num_epochs", "int", 5, True)},
            ("python", "-m", "text_classification.module.bow_model", "--num_epochs", "num_epochs",
             "train_data", "model"),
            ("module/bow_model.py",),
        )),
        (SEED_MODULE, ModuleSpec(
            "demo/module/m", MODULE_FILE,
            {"train_data": TEXT, "test_data": PortSpec("test_data", "text", False, True),
             "category_label": PortSpec("category_label", "text", False, True)},
            {"model": PortSpec("model", "sk_sgd_pickle", False, True)},
            {"num_epochs": ParamSpec("num_epochs", "int", 5, True)},
            ("python", "-m", "text_classification.module.bow_model", "--num_epochs", "num_epochs",
             "category_label", "train_data", "test_data", "model"),
        )),
        # defaults for ports; every parameter type; flag, choices, optional; version; quoted cmd tokens
        ("""
         input:
           raw: {}
           extra: {type: text, optional: true, datafile: false}
         output:
           out:
         parameters:
           n: {type: int}
           rate: {type: float, default: 1}
           name: {type: string, default: x}
           note: {type: text, optional: true}
           verbose: {type: bool, default: false, flag: --verbose}
           layers: {type: list, default: [1, 2]}
           opts: {type: dict, default: {a: 1}}
           loss: {type: str, default: hinge, choices: [hinge, log]}
           seed: {type: int, default: null}
         version: 2
         source: module/*.py
         description: a test module
         cmd: python3 run.py "--label=a b" n raw out
         """, ModuleSpec(
            "demo/module/m", MODULE_FILE,
            {"raw": PortSpec("raw", "file", False, True), "extra": PortSpec("extra", "text", True, False)},
            {"out": PortSpec("out", "file", False, True)},
            {"n": ParamSpec("n", "int"),
             "rate": ParamSpec("rate", "float", 1.0, True),
             "name": ParamSpec("name", "str", "x", True),
             "note": ParamSpec("note", "str", None, False, True),
             "verbose": ParamSpec("verbose", "bool", False, True, False, "--verbose"),
             "layers": ParamSpec("layers", "list", [1, 2], True),
             "opts": ParamSpec("opts", "dict", {"a": 1}, True),
             "loss": ParamSpec("loss", "str", "hinge", True, False, None, ("hinge", "log")),
             "seed": ParamSpec("seed", "int", None, True)},
            ("python3", "run.py", "--label=a b", "n", "raw", "out"),
            ("module/*.py",),
            "2",
        )),
    ],
    ids=["design", "seed-readme", "every-type"],
)
def test_parse_module_valid(text: str, expected: ModuleSpec) -> None:
    parsed = module(text)
    assert replace(parsed, template="") == expected  # the raw `cmd` text is kept for shell templates
    assert (parsed.app, parsed.name) == ("demo", "m")


def test_parse_module_required_params() -> None:
    params = module(
        """
        parameters:
          n: {type: int}
          o: {type: int, optional: true}
          d: {type: int, default: 3}
        cmd: run
        """
    ).params
    assert [(name, p.required) for name, p in params.items()] == [("n", True), ("o", False), ("d", False)]
    assert isinstance(params["d"].default, int) and isinstance(module(
        "parameters: {r: {type: float, default: 3}}\ncmd: run").params["r"].default, float)


@pytest.mark.parametrize("path", sorted(EXAMPLE_APP.glob("module/*.yaml")), ids=lambda p: p.name)
def test_example_app_modules_parse(path: Path) -> None:
    spec = parse_module(path.read_text(), str(path), f"text_classification/module/{path.stem}")
    assert spec.cmd[:2] == ("python", "-m")
    for name in [*spec.inputs, *spec.outputs]:
        assert name in spec.cmd  # every port appears on the command line


DESIGN_PIPE = """
version: 1.0
jobs:
  clean:
    module: text_classification/module/preprocess
    input:  {raw: file://text_classification/data/train.tsv}
    output: {cleaned: clean_train}            # an intermediate data name
  bow_model:
    module: text_classification/module/bow_model
    input:  {train_data: clean_train}         # consumes another job's output
    output: {model: s3://my-bucket/models/bow.pkl}   # also exported to this URI
    parameters: {num_epochs: 10}
"""

SEED_PIPE = """
version: 1.0
jobs:
  bow_model:
    module: text_classification/module/bow_model
    input:
      train_data: s3://my-bucket/train.tsv
      test_data: s3://my-bucket/test.tsv
      category_label: s3://my-bucket/labels.tsv
    output:
      model: bow_model_model
"""


def one(value: str) -> Binding:
    return Binding((Ref(value),))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DESIGN_PIPE, PipeSpec("demo/pipe/p.yaml", PIPE_FILE, {
            "clean": JobSpec("clean", "text_classification/module/preprocess",
                             {"raw": one("file://text_classification/data/train.tsv")}, {"cleaned": "clean_train"}),
            "bow_model": JobSpec("bow_model", "text_classification/module/bow_model",
                                 {"train_data": one("clean_train")}, {"model": "s3://my-bucket/models/bow.pkl"},
                                 {"num_epochs": 10}),
        }, "1.0")),
        (SEED_PIPE, PipeSpec("demo/pipe/p.yaml", PIPE_FILE, {
            "bow_model": JobSpec("bow_model", "text_classification/module/bow_model",
                                 {"train_data": one("s3://my-bucket/train.tsv"),
                                  "test_data": one("s3://my-bucket/test.tsv"),
                                  "category_label": one("s3://my-bucket/labels.tsv")},
                                 {"model": "bow_model_model"}),
        }, "1.0")),
        # list inputs (URIs and data names mixed, order kept), integrity pins, no version
        ("""
         jobs:
           merge:
             module: demo/module/merge
             input:
               parts:
                 - part_a
                 - file://demo/data/b.tsv
                 - {uri: "s3://my-bucket/c.tsv", md5: D41D8CD98F00B204E9800998ECF8427E}
               single: [only_one]
               pinned: {uri: "https://example.com/x.csv", sha256: "%s"}
             output: {merged: merged}
             parameters: {weights: [1, 2], opts: {k: v}}
         """ % ("ab" * 32), PipeSpec("demo/pipe/p.yaml", PIPE_FILE, {
            "merge": JobSpec("merge", "demo/module/merge", {
                "parts": Binding((Ref("part_a"), Ref("file://demo/data/b.tsv"),
                                  Ref("s3://my-bucket/c.tsv", md5="d41d8cd98f00b204e9800998ecf8427e")), True),
                "single": Binding((Ref("only_one"),), True),
                "pinned": Binding((Ref("https://example.com/x.csv", sha256="ab" * 32),)),
            }, {"merged": "merged"}, {"weights": [1, 2], "opts": {"k": "v"}}),
        }, "1.0")),
    ],
    ids=["design", "seed-readme", "lists-and-pins"],
)
def test_parse_pipe_valid(text: str, expected: PipeSpec) -> None:
    assert pipe(text) == expected


@pytest.mark.parametrize("path", sorted(EXAMPLE_APP.glob("pipe/*.yaml")), ids=lambda p: p.name)
def test_example_app_pipes_parse(path: Path) -> None:
    spec = parse_pipe(path.read_text(), str(path), f"text_classification/pipe/{path.name}")
    jobs = list(spec.jobs)  # bow_model_sweep.yaml also holds out a validation set for its select
    assert [j for j in jobs if j != "holdout"] == ["preprocess", "split", "bow_model", "evaluate"]


def test_ref_is_uri() -> None:
    assert Ref("s3://b/k").is_uri and not Ref("clean_train").is_uri


# --- structural errors ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        ("input: [a\ncmd: x\n", None, "invalid YAML: line 2"),
        ("cmd: x\nparameters:\n  a: {type: int\n  b: 1\n", None, "invalid YAML: line 4"),
        ("inputs: {a: {}}\ncmd: x a\n", "module", "unknown key 'inputs' (did you mean 'input'?)"),
        ("input:\n  a: {type: text, optinal: true}\ncmd: x a\n", "input.a", "did you mean 'optional'?"),
        ("output:\n  a: {dataflie: false}\ncmd: x a\n", "output.a", "did you mean 'datafile'?"),
        ("parameters:\n  n: {typ: int}\ncmd: x\n", "parameters.n", "did you mean 'type'?"),
        ("input:\n  a: {optional: yes please}\ncmd: x a\n", "input.a.optional", "expected true or false"),
        ("output:\n  a: {optional: 1}\ncmd: x a\n", "output.a.optional", "expected true or false"),
        ("input:\n  a: {datafile: 'no'}\ncmd: x a\n", "input.a.datafile", "expected true or false"),
        ("parameters:\n  n: {type: int, optional: maybe}\ncmd: x\n", "parameters.n.optional", "expected true or false"),
        ("parameters:\n  n: {type: integer}\ncmd: x\n", "parameters.n", "unknown type 'integer'"),
        ("parameters:\n  n: {type: int, default: '5'}\ncmd: x\n", "parameters.n", "default: expected int"),
        ("parameters:\n  n: {type: bool, default: 1}\ncmd: x\n", "parameters.n", "default: expected bool"),
        ("parameters:\n  n: {type: str, default: c, choices: [a, b]}\ncmd: x\n", "parameters.n", "not one of"),
        ("parameters:\n  n: {type: str, choices: a}\ncmd: x\n", "parameters.n", "'choices' must be a list"),
        ("parameters:\n  n: {type: int, default: 0, flag: --n}\ncmd: x\n", "parameters.n", "'flag' needs a bool"),
        ("parameters:\n  v: {type: bool, default: false, flag: verbose}\ncmd: x\n", "parameters.v", "'flag' needs"),
        ("parameters:\n  n: 5\ncmd: x\n", "parameters.n", "expected a mapping"),
        ("parameters:\n  1n: {type: int}\ncmd: x\n", "parameters", "'1n' is not a valid name"),
        ("input:\n  a b: {}\ncmd: x\n", "input", "'a b' is not a valid name"),
        ("input: [a, b]\ncmd: x\n", "input", "expected a mapping, got list"),
        ("input: {a: {}}\noutput: {a: {}}\ncmd: x a\n", "a", "declared more than once"),
        ("input: {a: {}}\nparameters: {a: {type: int}}\ncmd: x a\n", "a", "declared more than once"),
        ("input: {a: {}}\n", "cmd", "missing command line"),
        ("cmd: [python, x]\n", "cmd", "missing command line"),
        ("cmd: python 'unclosed\n", "cmd", "cannot split command line"),
        ("source: ../shared/*.py\ncmd: x\n", "source", "'../shared/*.py' must be a glob relative to the app"),
        ("source: [module/../../x.py]\ncmd: x\n", "source", "must be a glob relative to the app"),
        ("source: [/etc/passwd]\ncmd: x\n", "source", "must be a glob relative to the app"),
        ("source: {a: b}\ncmd: x\n", "source", "expected a list of file globs"),
        ("- a\n- b\n", "module", "expected a mapping, got list"),
    ],
)
def test_module_errors_name_file_and_field(text: str, field: str | None, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        module(text)
    message = str(info.value)
    assert message.startswith(MODULE_FILE + ": ")
    assert fragment in message
    if field is not None:
        assert f"{MODULE_FILE}: {field}: " in message
        assert field in {p.field for p in info.value.problems}
    assert isinstance(info.value, UserError) and info.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "job", "field", "fragment"),
    [
        ("jobs:\n  a: {module: x/module/y\n", None, None, "invalid YAML: line 3"),
        ("jobs:\n  a:\n    module: x/module/y\n   input: {}\n", None, None, "invalid YAML: line 4"),
        ("", None, "jobs", "the pipe has no jobs"),
        ("version: 1.0\njobs: {}\n", None, "jobs", "the pipe has no jobs"),
        ("jobs: [a, b]\n", None, "jobs", "expected a mapping, got list"),
        ("job:\n  a: {module: x/module/y}\n", None, "pipe", "unknown key 'job' (did you mean 'jobs'?)"),
        ("jobs:\n  1st: {module: x/module/y}\n", None, "jobs", "'1st' is not a valid job name"),
        ("jobs:\n  'my job': {module: x/module/y}\n", None, "jobs", "'my job' is not a valid job name"),
        ("jobs:\n  a: {module: x/module/y, parameterz: {n: 1}}\n", "a", "job", "did you mean 'parameters'?"),
        ("jobs:\n  a: {input: {x: s3://bkt/x}}\n", "a", "module", "missing module id"),
        ("jobs:\n  a: module x\n", "a", "job", "expected a mapping, got str"),
        ("jobs:\n  a: {module: m/module/y, input: {x: 5}}\n", "a", "input.x", "expected a data name, a URI"),
        ("jobs:\n  a: {module: m/module/y, input: {x: true}}\n", "a", "input.x", "got True"),
        ("jobs:\n  a: {module: m/module/y, input: {x: 'not a name'}}\n", "a", "input.x", "got 'not a name'"),
        ("jobs:\n  a: {module: m/module/y, input: {x: [ok, 3]}}\n", "a", "input.x", "got 3"),
        ("jobs:\n  a: {module: m/module/y, input: {x: []}}\n", "a", "input.x", "empty list"),
        ("jobs:\n  a: {module: m/module/y, input: {x: {uri: s3://bkt/x, md5: xyz}}}\n", "a", "input.x",
         "'md5' must be a hex digest"),
        ("jobs:\n  a: {module: m/module/y, input: {x: {uri: s3://bkt/x, md5: 12345}}}\n", "a", "input.x",
         "'md5' must be a hex digest"),
        ("jobs:\n  a: {module: m/module/y, input: {x: {uri: s3://bkt/x, sha256: abcd}}}\n", "a", "input.x",
         "'sha256' must be a hex digest"),
        ("jobs:\n  a: {module: m/module/y, input: {x: {uri: s3://bkt/x, md: abcd}}}\n", "a", "input.x",
         "unknown key 'md' (did you mean 'md5'?)"),
        ("jobs:\n  a: {module: m/module/y, input: {x: {uri: data_name}}}\n", "a", "input.x",
         "expected a data name, a URI or {uri: ..., md5: ...}"),
        ("jobs:\n  a: {module: m/module/y, output: {o: 'bad name'}}\n", "a", "output.o",
         "expected a data name or a URI"),
        ("jobs:\n  a: {module: m/module/y, output: {o: [x, y]}}\n", "a", "output.o", "expected a data name or a URI"),
        ("jobs:\n  a: {module: m/module/y, parameters: [1, 2]}\n", "a", "parameters", "expected a mapping"),
        ("jobs:\n  a: {module: m/module/y, input: [x]}\n", "a", "input", "expected a mapping"),
    ],
)
def test_pipe_errors_name_file_job_and_field(text: str, job: str | None, field: str | None, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        pipe(text)
    message = str(info.value)
    assert message.startswith(PIPE_FILE + ": ")
    assert fragment in message
    if job is not None:
        assert f"{PIPE_FILE}: job '{job}': {field}: " in message
    elif field is not None:
        assert f"{PIPE_FILE}: {field}: " in message
    assert (info.value.problems[0].job, info.value.problems[0].field) == (job, field)


def test_several_module_problems_are_reported_together() -> None:
    with pytest.raises(SpecError) as info:
        module(
            """
            input:
              a: {typo: 1}
            parameters:
              n: {type: number}
              v: {type: int, flag: --v}
            source: [../x]
            """
        )
    assert [p.field for p in info.value.problems] == ["input.a", "parameters.n", "parameters.v", "cmd", "source"]
    assert len(str(info.value).splitlines()) == 5


def test_several_pipe_problems_are_reported_together() -> None:
    with pytest.raises(SpecError) as info:
        pipe(
            """
            jobs:
              ok: {module: m/module/y, input: {x: clean}}
              bad-input: {module: m/module/y, input: {x: 5}}
              "9lives": {module: m/module/y}
              no_module: {output: {o: out}}
              bad_pin: {module: m/module/y, input: {x: {uri: s3://bkt/k, md5: nothex}}}
            """
        )
    located = [(p.job, p.field) for p in info.value.problems]
    assert located == [("bad-input", "input.x"), (None, "jobs"), ("no_module", "module"), ("bad_pin", "input.x")]


def test_duplicate_job_names_are_an_error() -> None:
    with pytest.raises(SpecError, match="line 3, column 3: duplicate key 'a'"):
        pipe("jobs:\n  a: {module: x/module/one}\n  a: {module: x/module/two}\n")


# --- convert_param ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("int", 3, 3),
        ("int", -7, -7),
        ("float", 0.5, 0.5),
        ("float", 3, 3.0),
        ("str", "hinge", "hinge"),
        ("str", "", ""),
        ("bool", True, True),
        ("bool", False, False),
        ("list", [1, "a", {"b": 2}], [1, "a", {"b": 2}]),
        ("list", [], []),
        ("dict", {"a": [1, 2]}, {"a": [1, 2]}),
    ],
)
def test_convert_param_yaml_values(kind: str, value: Any, expected: Any) -> None:
    converted = convert_param(ParamSpec("p", kind), value)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        ("int", "10", 10),
        ("int", "-3", -3),
        ("float", "0.01", 0.01),
        ("float", "1e-3", 0.001),
        ("float", "2", 2.0),
        ("str", "10", "10"),
        ("str", "a b", "a b"),
        ("str", "true", "true"),
        ("bool", "true", True),
        ("bool", "True", True),
        ("bool", "yes", True),
        ("bool", "1", True),
        ("bool", "on", True),
        ("bool", "false", False),
        ("bool", "No", False),
        ("bool", "0", False),
        ("bool", "off", False),
        ("list", "[1, 2, x]", [1, 2, "x"]),
        ("list", "[]", []),
        ("dict", "{a: 1, b: [x]}", {"a": 1, "b": ["x"]}),
        ("dict", '{"k": "v"}', {"k": "v"}),
    ],
)
def test_convert_param_from_command_line_text(kind: str, text: str, expected: Any) -> None:
    converted = convert_param(ParamSpec("p", kind), text, from_text=True)
    assert converted == expected and type(converted) is type(expected)


@pytest.mark.parametrize(
    ("kind", "value", "from_text", "fragment"),
    [
        ("int", "3", False, "expected int, got str '3'"),
        ("int", 3.0, False, "expected int, got float"),
        ("int", True, False, "expected int, got bool"),
        ("float", False, False, "expected float, got bool"),
        ("float", "0.1", False, "expected float, got str"),
        ("str", 5, False, "expected str, got int"),
        ("bool", 1, False, "expected bool, got int"),
        ("bool", "true", False, "expected bool, got str"),
        ("list", "a", False, "expected list, got str"),
        ("list", (1, 2), False, "expected list, got tuple"),
        ("dict", [1], False, "expected dict, got list"),
        ("int", "3.5", True, "expected int, got '3.5'"),
        ("int", "ten", True, "expected int, got 'ten'"),
        ("float", "fast", True, "expected float, got 'fast'"),
        ("bool", "maybe", True, "expected bool, got 'maybe'"),
        ("list", "a,b", True, "expected list, got str 'a,b'"),
        ("list", "[1, 2", True, "expected list, got '[1, 2'"),
        ("dict", "[1]", True, "expected dict, got list"),
    ],
)
def test_convert_param_rejects_wrong_types(kind: str, value: Any, from_text: bool, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        convert_param(ParamSpec("p", kind), value, from_text=from_text)
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("kind", "choices", "value", "from_text", "expected"),
    [
        ("str", ("hinge", "log"), "log", False, "log"),
        ("str", ("hinge", "log"), "log", True, "log"),
        ("int", (1, 2, 4), "4", True, 4),
        ("int", (1, 2, 4), 2, False, 2),
        ("float", (0.5, 1.0), 1, False, 1.0),
    ],
)
def test_convert_param_choices_accepted(kind: str, choices: tuple, value: Any, from_text: bool, expected: Any) -> None:
    assert convert_param(ParamSpec("p", kind, choices=choices), value, from_text=from_text) == expected


@pytest.mark.parametrize(
    ("kind", "choices", "value", "from_text"),
    [
        ("str", ("hinge", "log"), "squared", False),
        ("str", ("hinge", "log"), "HINGE", True),
        ("int", (1, 2, 4), "3", True),
        ("int", (1, 2, 4), 3, False),
    ],
)
def test_convert_param_choices_rejected(kind: str, choices: tuple, value: Any, from_text: bool) -> None:
    with pytest.raises(ValueError) as info:
        convert_param(ParamSpec("p", kind, choices=choices), value, from_text=from_text)
    assert f"is not one of {list(choices)}" in str(info.value)
