"""Shell templates (pure): tell whether a `cmd` needs `/bin/sh`, and fill one in safely.

The module author's template is code; every value put into it is data and is quoted with
`shlex.quote`, closing any quote the placeholder sits in:

    cat input > out && echo "{msg} done"      input=/c/a b   out=/s/o   msg=$(rm x)
    cat '/c/a b' > /s/o && echo ""'$(rm x)'" done"

A template is lexed into words and separators (whitespace, `; & | < > ( )`), each character of a
word tagged with its context. Values go only where quoting is certain to hold: a word equal to a
name (unquoted, no quotes in it) becomes that name's quoted values; `{name}` / `%(name)s` inside
a word, unquoted or in top-level quotes, becomes one quoted value. Inside `$(...)`, `${...}`,
backticks or a here-document the shell parses text again, so nothing is substituted there, and
`unsafe_names` lets the module check refuse a template that puts a name there. Comments are
left as they are.

>>> render_shell("cat x > y", {"x": ["a b"], "y": ["o"]}, optional=set(), python="py")
"cat 'a b' > o"
>>> uses_shell_syntax("python -m m a b"), uses_shell_syntax("unzip z && mv d/* out")
(False, True)
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Set
from dataclasses import dataclass

SHELL = "/bin/sh"
# the context of each character of a word
UNQUOTED, SINGLE, DOUBLE, ESCAPED, OPAQUE, COMMENT = "u", "'", '"', "e", "x", "#"
_OPERATOR_CHARS = frozenset(";&|<>()")
_COMMAND_STARTS = frozenset({";", "&&", "||", "|", "&", "("})
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_PLACEHOLDER = re.compile(rf"\{{({_NAME})\}}|%\(({_NAME})\)s")
_PERCENT = re.compile(rf"%\({_NAME}\)s")
_WORDS = re.compile(_NAME)
_VARIABLE = re.compile(r"\$[A-Za-z_0-9@*#?$!-]")


@dataclass(frozen=True)
class Piece:
    """A word (`is_word`) or a run of separators; `context` has one code per character of a word."""

    text: str
    is_word: bool
    context: str = ""

    @property
    def is_plain(self) -> bool:
        """An unquoted word without quotes or escapes: one that can be compared with a name."""
        return self.is_word and set(self.context) == {UNQUOTED} and not any(c in "'\"\\" for c in self.text)

    def regions(self, codes: str) -> list[str]:
        """The runs of characters whose context is one of `codes`."""
        return [self.text[m.start():m.end()] for m in re.finditer(f"[{re.escape(codes)}]+", self.context)]


def lex(template: str) -> list[Piece]:
    """Split a template into words and separators; ValueError on an unclosed quote or expansion."""
    pieces: list[Piece] = []
    text: list[str] = []
    context: list[str] = []
    sep: list[str] = []
    quote = ""
    i = 0

    def add(chunk: str, code: str) -> None:
        if sep:
            pieces.append(Piece("".join(sep), False))
            sep.clear()
        text.append(chunk)
        context.append(code * len(chunk))

    def end_word() -> None:
        if text:
            pieces.append(Piece("".join(text), True, "".join(context)))
            text.clear()
            context.clear()

    while i < len(template):
        char = template[i]
        if not quote and template.startswith("<<", i):  # a here-document: its body is parsed again
            end_word()
            sep.append("<<")
            add(template[i + 2:], OPAQUE)
            break
        if not quote and (char.isspace() or char in _OPERATOR_CHARS):
            end_word()
            sep.append(char)
            i += 1
            continue
        if not quote and char == "#" and not text:  # a comment, to the end of the line
            end = template.find("\n", i)
            end = len(template) if end < 0 else end
            add(template[i:end], COMMENT)
            i = end
            continue
        code = quote or UNQUOTED
        percent = _PERCENT.match(template, i)
        if percent:  # `%(name)s`: its parentheses open no subshell
            add(percent.group(0), code)
            i = percent.end()
        elif char == "\\" and quote != "'" and i + 1 < len(template):
            add(template[i:i + 2], ESCAPED)
            i += 2
        elif quote != "'" and (char == "`" or template.startswith(("$(", "${"), i)):
            end = _expansion_end(template, i)
            add(template[i:end], OPAQUE)
            i = end
        else:
            if char in "'\"" and quote in ("", char):
                quote = "" if quote else char
            add(char, code)
            i += 1
    if quote:
        raise ValueError(f"no closing quotation ({quote})")
    end_word()
    if sep:
        pieces.append(Piece("".join(sep), False))
    return pieces


def _expansion_end(template: str, start: int) -> int:
    """Index just after the backtick, `$(...)` or `${...}` starting at `start` (nesting counted)."""
    if template[start] == "`":
        i = start + 1
        while i < len(template):
            if template[i] == "\\":
                i += 2
                continue
            if template[i] == "`":
                return i + 1
            i += 1
        raise ValueError("no closing backtick")
    opening = template[start + 1]
    closing = ")" if opening == "(" else "}"
    depth, i, quote = 0, start + 1, ""
    while i < len(template):
        char = template[i]
        if char == "\\" and quote != "'":
            i += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == opening:
            depth += 1
        elif char == closing:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"no closing '{closing}' for '${opening}'")


def uses_shell_syntax(template: str) -> bool:
    """True when the template needs a shell: an operator (`&& || ; | > <`), a glob `*`, an
    expansion (`$VAR`, `$(...)`, `${...}`, backticks) outside single quotes, or a comment."""
    try:
        pieces = lex(template)
    except ValueError:
        return False  # reported by the argument-list parser
    for piece in pieces:
        if not piece.is_word:
            if any(c in _OPERATOR_CHARS for c in piece.text):
                return True
            continue
        if {OPAQUE, COMMENT} & set(piece.context) or "*" in "".join(piece.regions(UNQUOTED)):
            return True
        if any(_VARIABLE.search(region) for region in piece.regions(UNQUOTED + DOUBLE)):
            return True
    return False


def unsafe_names(template: str, names: Set[str]) -> list[str]:
    """Names of `names` the template uses inside `$(...)`, `${...}`, backticks or a
    here-document, where the shell would read a value as code: nothing is substituted there."""
    found: dict[str, None] = {}
    for piece in lex(template):
        for region in piece.regions(OPAQUE) if piece.is_word else ():
            for word in _WORDS.findall(region):
                if word in names:
                    found[word] = None
    return list(found)


def render_shell(
    template: str, values: Mapping[str, list[str]], *, optional: Set[str], python: str
) -> str:
    """The script for `/bin/sh -c`: `values` substituted, each one `shlex.quote`d.

    As in the argument-list form: a left-out optional name disappears together with a literal
    `--option` just before it, and `python`/`python3` in command position is MLPipe's own
    interpreter.
    """
    out: list[str] = []
    command_position = True
    last_option: int | None = None  # index in `out` of a literal "--opt" word just emitted
    for piece in lex(template):
        if not piece.is_word:
            out.append(piece.text)
            operators = re.findall(r"&&|\|\||[;&|()<>]", piece.text)
            command_position = (command_position or "\n" in piece.text
                                or any(op in _COMMAND_STARTS for op in operators))
            if operators or "\n" in piece.text:
                last_option = None
            continue
        text = piece.text
        if piece.is_plain and (text in values or text in optional):
            args = values.get(text, [])
            if not args and last_option is not None:
                del out[last_option:]  # the option and the whitespace after it
            out.append(" ".join(shlex.quote(a) for a in args))
            last_option = None
        elif command_position and piece.is_plain and text in ("python", "python3"):
            out.append(shlex.quote(python))
        else:
            out.append(_fill(piece, values, optional))
            last_option = len(out) - 1 if piece.is_plain and text.startswith("-") else None
        command_position = False
    return "".join(out)


def _fill(piece: Piece, values: Mapping[str, list[str]], optional: Set[str]) -> str:
    """Replace the placeholders of one word: each closes the quote it sits in and is quoted itself."""
    result, last = [], 0
    for match in _PLACEHOLDER.finditer(piece.text):
        name = match.group(1) or match.group(2)
        codes = set(piece.context[match.start():match.end()])
        if (name not in values and name not in optional) or len(codes) != 1 or codes - {UNQUOTED, SINGLE, DOUBLE}:
            continue  # not ours, or inside an expansion, an escape or a comment: left as written
        quote = "" if codes == {UNQUOTED} else codes.pop()
        result.append(piece.text[last:match.start()])
        result.append(f"{quote}{shlex.quote(' '.join(values.get(name, [])))}{quote}")
        last = match.end()
    result.append(piece.text[last:])
    return "".join(result)
