"""Shell templates (pure): tell whether a `cmd` needs `/bin/sh`, and fill one in safely.

The module author's template is code; every value put into it is data and is quoted with
`shlex.quote`, in whatever quoting context the placeholder sits:

    cat input > out && echo "{msg} done"      input=/c/a b   out=/s/o   msg=$(rm x)
    cat '/c/a b' > /s/o && echo ""'$(rm x)'" done"

A template is lexed into words and separators (whitespace, `; & | < > ( )`); a word equal to a
name (no quotes in it) becomes that name's quoted values, and `{name}` / `%(name)s` anywhere in
a word becomes one quoted value.

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
_OPERATOR_CHARS = frozenset(";&|<>()")
_COMMAND_STARTS = frozenset({";", "&&", "||", "|", "&", "("})
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}|%\(([A-Za-z_][A-Za-z0-9_.\-]*)\)s")
_PERCENT = re.compile(r"%\(([A-Za-z_][A-Za-z0-9_.\-]*)\)s")
_EXPANSION = re.compile(r"\$[A-Za-z_{(]|`")


@dataclass(frozen=True)
class Piece:
    """A word (`is_word`) or a run of separators; `quotes` maps each character of a word to
    the quote it sits in ("\\0" unquoted, "'" or '"'), for placeholders."""

    text: str
    is_word: bool
    quotes: str = ""

    @property
    def is_plain(self) -> bool:
        """A word without quotes or escapes: one that can be compared with a name."""
        return self.is_word and not any(c in "'\"\\" for c in self.text)


def lex(template: str) -> list[Piece]:
    """Split a template into words and separators; ValueError on an unclosed quote."""
    pieces: list[Piece] = []
    word, quotes, sep = [], [], []
    quote = ""
    i = 0

    def flush_word() -> None:
        if word:
            pieces.append(Piece("".join(word), True, "".join(quotes)))
            word.clear()
            quotes.clear()

    def flush_sep() -> None:
        if sep:
            pieces.append(Piece("".join(sep), False))
            sep.clear()

    while i < len(template):
        char = template[i]
        if not quote and (char.isspace() or char in _OPERATOR_CHARS):
            flush_word()
            sep.append(char)
            i += 1
            continue
        flush_sep()
        placeholder = _PERCENT.match(template, i)
        if placeholder:  # `%(name)s`: its parentheses are no subshell
            word.append(placeholder.group(0))
            quotes.append((quote or "\0") * len(placeholder.group(0)))
            i = placeholder.end()
            continue
        if char == "\\" and quote != "'" and i + 1 < len(template):
            word.append(template[i:i + 2])
            quotes.append(quote * 2 if quote else "\0\0")
            i += 2
            continue
        if char in "'\"" and quote in ("", char):
            quote = "" if quote else char
        word.append(char)
        quotes.append(quote or "\0" if char not in "'\"" else "\0")
        i += 1
    if quote:
        raise ValueError(f"no closing quotation ({quote})")
    flush_word()
    flush_sep()
    return pieces


def uses_shell_syntax(template: str) -> bool:
    """True when the template needs a shell: an operator (`&& || ; | > <`), a glob `*` or an
    expansion (`$VAR`, `$(...)`, backticks) outside single quotes."""
    try:
        pieces = lex(template)
    except ValueError:
        return False  # reported by the argument-list parser
    for piece in pieces:
        if not piece.is_word:
            if any(c in _OPERATOR_CHARS for c in piece.text):
                return True
            continue
        outside_single = "".join(c for c, q in zip(piece.text, piece.quotes, strict=True) if q != "'")
        unquoted = "".join(c for c, q in zip(piece.text, piece.quotes, strict=True) if q == "\0")
        if "*" in unquoted or _EXPANSION.search(outside_single):
            return True
    return False


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
            operators = piece.text.split()
            if operators and any(op in _COMMAND_STARTS for op in _split_operators("".join(operators))):
                command_position = True
            if operators:
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


def _split_operators(text: str) -> list[str]:
    return re.findall(r"&&|\|\||[;&|()<>]", text)


def _fill(piece: Piece, values: Mapping[str, list[str]], optional: Set[str]) -> str:
    """Replace the placeholders of one word, each closed out of its quote and quoted itself."""
    result, last = [], 0
    for match in _PLACEHOLDER.finditer(piece.text):
        name = match.group(1) or match.group(2)
        if name not in values and name not in optional:
            continue
        quote = piece.quotes[match.start()]
        quote = "" if quote == "\0" else quote
        value = shlex.quote(" ".join(values.get(name, [])))
        result.append(piece.text[last:match.start()])
        result.append(f"{quote}{value}{quote}")
        last = match.end()
    result.append(piece.text[last:])
    return "".join(result)
