"""Draft a module YAML from an argparse script by reading its source (`ml create_yaml`); the script never runs."""

from __future__ import annotations

import ast
import contextlib
import re
import shlex
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlpipe.core.errors import UsageError
from mlpipe.core.spec import CMD, INPUT, OUTPUT, PARAMETERS

PARAMETER = "parameter"
SECTION_OF_ROLE = {INPUT: INPUT, OUTPUT: OUTPUT, PARAMETER: PARAMETERS}
FLAG_ACTIONS = {"store_true", "store_false"}
IGNORED_ACTIONS = {"help", "version"}  # never part of a job's command line
LIST_NARGS = {"+", "*"}
SCALAR_TYPES = {"int", "float", "str", "bool"}
TYPE_OF_VALUE = {bool: "bool", int: "int", float: "float", str: "str", list: "list", tuple: "list"}
HELP_WORD = re.compile(r"\b(input|output|param|parameter)s?\b", re.IGNORECASE)
ROLE_OF_HELP_WORD = {"input": INPUT, "output": OUTPUT, "param": PARAMETER, "parameter": PARAMETER}
# (pattern searched in the lower-cased name, role, reason template filled with the matched text)
NAME_RULES = (
    (re.compile(r"^input"), INPUT, "name starts with {}"),
    (re.compile(r"^out"), OUTPUT, "name starts with {}"),
    (re.compile(r"model"), OUTPUT, "name contains {}"),
    (re.compile(r"_(file|path|dir|data)$"), INPUT, "name ends in {}"),
    (re.compile(r"^(train|test)"), INPUT, "name starts with {}"),
)
YAML_WIDTH = 1 << 16  # never fold a long `cmd` over several lines


@dataclass(frozen=True)
class ScriptArgument:
    """One `add_argument(...)` call, reduced to the literal values written in the script."""

    dest: str
    option: str | None  # the option string used in `cmd`; None for a positional argument
    line: int
    type_name: str | None = None  # int, float, str or bool when `type=` says so
    file_mode: str | None = None  # the mode of `type=argparse.FileType(...)`
    default: Any = None
    choices: tuple[Any, ...] | None = None
    action: str = "store"
    nargs: str | int | None = None
    help: str = ""
    required: bool = False


@dataclass(frozen=True)
class InterfaceEntry:
    """One input, output or parameter of the drafted module and its tokens in `cmd`."""

    name: str
    role: str  # INPUT, OUTPUT or PARAMETER
    tokens: tuple[str, ...]
    type: str
    optional: bool = False
    default: Any = None
    flag: str | None = None
    guess: str | None = None  # why the role was guessed; None when the help text said so
    choices: tuple[Any, ...] | None = None  # argparse `choices=[...]`, kept as the parameter's `choices:`

    def to_yaml(self) -> dict[str, Any]:
        """The entry's YAML mapping, keys in the order DESIGN.md shows them."""
        if self.role != PARAMETER:
            return {"type": self.type, "optional": self.optional, "datafile": True}
        spec: dict[str, Any] = {"type": self.type}
        if self.default is not None:
            spec["default"] = self.default
        if self.choices is not None:
            spec["choices"] = list(self.choices)
        if self.flag:
            spec["flag"] = self.flag
        if self.optional:
            spec["optional"] = True
        return spec


@dataclass(frozen=True)
class ModuleDraft:
    """The module interface read from a script at APP/module/NAME.py, plus notes for the author."""

    app: str
    name: str
    entries: tuple[InterfaceEntry, ...]
    notes: tuple[str, ...]

    @property
    def cmd(self) -> str:
        tokens = ["python", "-m", f"{self.app}.module.{self.name}"]
        for entry in self.entries:
            tokens.extend(entry.tokens)
        return shlex.join(tokens)

    def section(self, role: str) -> dict[str, dict[str, Any]]:
        return {e.name: e.to_yaml() for e in self.entries if e.role == role}


def describe_script(source: str, script_path: Path) -> ModuleDraft:
    """Read the argparse interface from a script's source; never imports or runs it."""
    app, name = _module_location(script_path)
    try:
        tree = ast.parse(source, filename=str(script_path))
    except SyntaxError as exc:
        raise UsageError(f"{script_path}:{exc.lineno}: cannot parse the script: {exc.msg}") from exc
    calls = sorted((node for node in ast.walk(tree) if _is_add_argument(node)), key=lambda c: (c.lineno, c.col_offset))
    if not calls:
        raise UsageError(f"{script_path}: no parser.add_argument(...) call found; is it an argparse script?")
    constants = _module_constants(tree)
    entries: dict[str, InterfaceEntry] = {}
    notes: list[str] = []
    for call in calls:
        argument = _read_argument(call, constants, notes)
        if argument is None:
            continue
        entry = _to_entry(argument, notes)
        if entry.name in entries:
            notes.append(f"line {call.lineno}: skipped {argument.option or entry.name}: name '{entry.name}' is taken")
            continue
        entries[entry.name] = entry
        if entry.guess:
            notes.append(f"guessed: {entry.name} as {entry.role} ({entry.guess})")
    return ModuleDraft(app, name, tuple(entries.values()), tuple(notes))


def render_module_yaml(draft: ModuleDraft) -> str:
    """The module YAML text: input, output, parameters, cmd."""
    document: dict[str, Any] = {section: draft.section(role) for role, section in SECTION_OF_ROLE.items()}
    document[CMD] = draft.cmd
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=YAML_WIDTH)


def write_module_yaml(
    script_path: Path, dry_run: bool = False, force: bool = False
) -> tuple[str, Path, tuple[str, ...]]:
    """Write NAME.yaml next to the script (not when `dry_run`; over an existing one only with `force`)."""
    script_path = script_path.absolute()
    try:
        with tokenize.open(script_path) as script:  # honours a `# -*- coding: ... -*-` line
            source = script.read()
    except FileNotFoundError as exc:
        raise UsageError(f"{script_path}: no such script") from exc
    except (OSError, SyntaxError, UnicodeDecodeError) as exc:
        raise UsageError(f"{script_path}: cannot read the script: {exc}") from exc
    draft = describe_script(source, script_path)
    text = render_module_yaml(draft)
    target = script_path.with_suffix(".yaml")
    notes = draft.notes
    if target.exists() and not force:
        if not dry_run:
            raise UsageError(f"{target} already exists; pass --force to overwrite it")
        notes += (f"{target.name} already exists; writing it would need --force",)
    if not dry_run:
        target.write_text(text, encoding="utf-8")
    return text, target, notes


def _module_location(script_path: Path) -> tuple[str, str]:
    """APP and NAME of `.../APP/module/NAME.py`, both usable in `python -m APP.module.NAME`."""
    if script_path.suffix != ".py" or script_path.parent.name != "module":
        raise UsageError(f"{script_path}: a module script must be APP/module/NAME.py; move it into an app's module/")
    app, name = script_path.parent.parent.name, script_path.stem
    if not (app.isidentifier() and name.isidentifier()):
        raise UsageError(f"{script_path}: 'python -m {app}.module.{name}' cannot run it; rename to Python identifiers")
    return app, name


def _is_add_argument(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument"


def _module_constants(tree: ast.Module) -> dict[str, Any]:
    """Top-level `NAME = <literal>` assigned once, so `default=DEFAULT_EPOCHS` can be read."""
    assignments = [
        (statement.targets[0].id, statement.value)
        for statement in tree.body
        if isinstance(statement, ast.Assign) and [type(t) for t in statement.targets] == [ast.Name]
    ]
    names = [name for name, _ in assignments]
    found: dict[str, Any] = {}
    for name, value in assignments:
        if names.count(name) == 1:
            with contextlib.suppress(ValueError, TypeError, SyntaxError):
                found[name] = ast.literal_eval(value)
    return found


def _literal(node: ast.expr, constants: dict[str, Any]) -> Any:
    """The value of a literal expression or a module constant; ValueError otherwise."""
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    try:
        return ast.literal_eval(node)
    except (TypeError, SyntaxError) as exc:
        raise ValueError(ast.unparse(node)) from exc


def _read_argument(call: ast.Call, constants: dict[str, Any], notes: list[str]) -> ScriptArgument | None:
    """One add_argument call; None (with a note) when it cannot be part of a module's cmd."""
    where = f"line {call.lineno}"
    try:
        strings = [_literal(arg, constants) for arg in call.args]
    except ValueError:
        strings = []
    if not strings or not all(isinstance(s, str) and s for s in strings):
        notes.append(f"{where}: skipped {ast.unparse(call)[:60]}: its option names are not literal strings")
        return None
    keywords = {kw.arg: kw.value for kw in call.keywords if kw.arg}
    option = next((s for s in strings if s.startswith("--")), strings[0]) if strings[0].startswith("-") else None
    shown = option or strings[0]
    action = _read_action(keywords.get("action"), constants)
    if action not in FLAG_ACTIONS | {"store"}:
        if action not in IGNORED_ACTIONS:
            notes.append(f"{where}: skipped {shown}: action={ast.unparse(keywords['action'])} has no YAML form")
        return None
    values: dict[str, Any] = {}
    for key in ("default", "choices", "nargs", "help", "required", "dest"):
        if key in keywords:
            try:
                values[key] = _literal(keywords[key], constants)
            except ValueError:
                notes.append(f"{where}: {key}={ast.unparse(keywords[key])} is not a literal; ignored")
    type_name, file_mode = _read_type(keywords.get("type"), where, notes)
    choices = values.get("choices")
    return ScriptArgument(
        dest=str(values.get("dest") or shown.lstrip("-")).replace("-", "_"),
        option=option,
        line=call.lineno,
        type_name=type_name,
        file_mode=file_mode,
        default=values.get("default"),
        choices=tuple(choices) if isinstance(choices, list | tuple | set) else None,
        action=action,
        nargs=values.get("nargs"),
        help=str(values.get("help") or ""),
        required=values.get("required") is True,
    )


def _read_action(node: ast.expr | None, constants: dict[str, Any]) -> str:
    """The literal `action=` name; a non-literal action (a class) is returned as its source text."""
    if node is None:
        return "store"
    try:
        return str(_literal(node, constants))
    except ValueError:
        return ast.unparse(node)


def _read_type(node: ast.expr | None, where: str, notes: list[str]) -> tuple[str | None, str | None]:
    """(type name, FileType mode) of a `type=` value."""
    if node is None:
        return None, None
    if isinstance(node, ast.Name) and node.id in SCALAR_TYPES:
        return node.id, None
    if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("FileType"):
        mode = node.args[0] if node.args else None
        return "str", mode.value if isinstance(mode, ast.Constant) and isinstance(mode.value, str) else "r"
    if ast.unparse(node).split(".")[-1] != "Path":
        notes.append(f"{where}: type={ast.unparse(node)} is not int, float, str or bool; declared as str")
    return "str", None


def _classify(argument: ScriptArgument) -> tuple[str, str | None]:
    """(role, why it was guessed); the reason is None when the help text names the role."""
    word = HELP_WORD.search(argument.help)
    takes_a_path = argument.action not in FLAG_ACTIONS and argument.type_name in (None, "str")
    if word:
        role = ROLE_OF_HELP_WORD[word.group(1).lower()]
        if role == PARAMETER or takes_a_path:
            return role, None
    if argument.action in FLAG_ACTIONS:
        return PARAMETER, f"action is {argument.action}"
    if argument.type_name in ("int", "float", "bool"):
        return PARAMETER, f"type is {argument.type_name}"
    if argument.choices is not None:
        return PARAMETER, "it has choices"
    if argument.file_mode:
        role = OUTPUT if set(argument.file_mode) & set("wax") else INPUT
        return role, f"type is FileType({argument.file_mode!r})"
    if isinstance(argument.default, int | float):
        return PARAMETER, f"default is {argument.default!r}"
    for pattern, role, reason in NAME_RULES:
        match = pattern.search(argument.dest.lower())
        if match:
            return role, reason.format(match.group(0))
    return PARAMETER, "no input/output hint in its name or help"


def _to_entry(argument: ScriptArgument, notes: list[str]) -> InterfaceEntry:
    role, guess = _classify(argument)
    name = argument.dest
    if argument.action in FLAG_ACTIONS:
        return _flag_entry(argument, guess, notes)
    tokens = (argument.option, name) if argument.option else (name,)
    required = argument.nargs not in ("?", "*") if argument.option is None else argument.required
    if role != PARAMETER:
        return InterfaceEntry(name, role, tokens, "file", optional=not required, guess=guess)
    kind = _param_type(argument)
    if argument.type_name == "bool":
        notes.append(
            f"line {argument.line}: {argument.option or name} uses type=bool, which reads any non-empty "
            "text (also 'False') as True; consider action='store_true'"
        )
    default = _coerce_default(argument.default, kind)
    # a list parameter's choices apply to each item, which a parameter's `choices:` cannot say
    choices = argument.choices if kind in SCALAR_TYPES else None
    if choices is not None and default is not None and default not in choices:
        notes.append(f"line {argument.line}: {argument.option or name}: the default {default!r} is not one of its "
                     "choices, which the YAML therefore leaves out")
        choices = None
    return InterfaceEntry(name, role, tokens, kind, default is None and not required, default, guess=guess,
                          choices=choices)


def _flag_entry(argument: ScriptArgument, guess: str | None, notes: list[str]) -> InterfaceEntry:
    """A store_true/store_false option as a bool parameter whose `flag:` is passed when true."""
    option = argument.option or argument.dest
    if argument.action == "store_true":
        return InterfaceEntry(argument.dest, PARAMETER, (argument.dest,), "bool", False, False, option, guess)
    name = option.lstrip("-").replace("-", "_")
    if name == argument.dest:
        name = f"no_{name}"
    notes.append(
        f"line {argument.line}: {option} turns {argument.dest} off (store_false), so it is the bool parameter "
        f"{name} (default false): true passes {option}, false leaves it out"
    )
    return InterfaceEntry(name, PARAMETER, (name,), "bool", False, False, option, guess)


def _param_type(argument: ScriptArgument) -> str:
    if argument.nargs in LIST_NARGS or isinstance(argument.nargs, int):
        return "list"
    if argument.type_name:
        return argument.type_name
    sample = argument.choices[0] if argument.choices else argument.default
    return TYPE_OF_VALUE.get(type(sample), "str")


def _coerce_default(default: Any, kind: str) -> Any:
    """The default as argparse would see it: `type=` also converts a string default."""
    if default is None:
        return None
    if kind == "list":
        return list(default) if isinstance(default, list | tuple) else [default]
    converter = {"int": int, "float": float}.get(kind)
    if converter and isinstance(default, str | int) and not isinstance(default, bool):
        try:
            return converter(default)
        except ValueError:
            return default
    return default
