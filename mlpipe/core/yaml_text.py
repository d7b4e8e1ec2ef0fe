"""YAML text to data, as `yaml.safe_load` reads it, refusing duplicate keys, errors located in
the file.

    plain YAML (mappings, sequences, scalars)  ── parser events ──> data     (the common case)
    anchors, aliases, tags, merge keys, errors ── PyYAML's node loader ──> data or a located error

NOTE: PyYAML's loader first builds a node (with two position marks) for every value of the
file, then the data; a 10,000-job pipe took ~90 MB of nodes, which the process kept as its
peak. Built from the parser's events instead, one at a time, the same file takes ~15 MB and a
third of the time. Anything but plain YAML, and every error, goes to the node loader, which
gives exactly `yaml.safe_load`'s data and its located messages.
"""

from __future__ import annotations

from collections.abc import Hashable
from functools import cache
from typing import Any

from mlpipe.core.errors import Problem, SpecError

_STR = "tag:yaml.org,2002:str"


def load_yaml_text(text: str, file: str) -> Any:
    """Safe YAML loading (no Python objects), with errors located in `file`."""
    import yaml

    try:
        return _load_plain(text)
    except (_NotPlain, yaml.YAMLError, ValueError, TypeError):
        pass  # the node loader decides: the same data, or the error located in the file
    loader = _strict_loader()(text)
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([Problem(file, f"invalid YAML: {where}{problem}")]) from None
    finally:
        loader.dispose()


class _NotPlain(Exception):
    """The text uses what only the node loader reads (or has a duplicate key it must locate)."""


def _load_plain(text: str) -> Any:
    """The data of a plain YAML document, built from the parser's events (see the NOTE above)."""
    import yaml
    from yaml import events

    # safe_load's resolver and constructors: the same scalars as safe_load
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    scalar_types = yaml.SafeLoader.yaml_constructors
    open_ = {events.MappingStartEvent: dict, events.SequenceStartEvent: list}
    close = (events.MappingEndEvent, events.SequenceEndEvent)
    stack: list[list] = []  # [container, key waiting for its value (a mapping's), has a key]
    root, documents = None, 0
    try:
        while True:
            event = loader.get_event()
            kind = type(event)
            if kind is events.ScalarEvent:
                if event.anchor or event.tag not in (None, "!"):
                    raise _NotPlain
                tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
                item = event.value if tag == _STR else scalar_types[tag](
                    loader, yaml.ScalarNode(tag, event.value, style=event.style))
                container = None
            elif kind in open_:
                if event.anchor or event.tag not in (None, "!"):
                    raise _NotPlain
                item = container = open_[kind]()
            elif kind in close:
                stack.pop()
                continue
            elif kind is events.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _NotPlain  # safe_load's error: one document expected
                continue
            elif kind is events.StreamEndEvent:
                return root
            elif kind is events.AliasEvent:
                raise _NotPlain
            else:
                continue
            if not stack:
                root = item
            else:
                top = stack[-1]
                if type(top[0]) is list:
                    top[0].append(item)
                elif not top[2]:  # a key
                    if container is not None or item in top[0]:
                        raise _NotPlain  # a complex key, a duplicate key (a merge key has no constructor here)
                    top[1], top[2] = item, True
                else:
                    top[0][top[1]] = item
                    top[2] = False
            if container is not None:
                stack.append([container, None, False])
    except KeyError:  # a tag without a safe constructor (`<<` resolved as a merge key)
        raise _NotPlain from None
    finally:
        loader.dispose()


@cache
def _strict_loader() -> type:
    """yaml.safe_load's loader (the C parser when available) that refuses duplicate keys,
    which plain YAML loading silently drops (two jobs of one name would lose one).

    Built on first use: `yaml` is imported only when a YAML file is really parsed (a no-op
    `ml runpipe` reads its pipe from the loader's memo, see `loader.py`)."""
    import yaml

    class _StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
            seen = set()
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # merged keys may be overridden: only the mapping's own keys must differ
                key = self.construct_object(key_node, deep=deep)
                if not isinstance(key, Hashable):
                    break  # safe_load's own error: an unhashable key
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key '{key}'", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return _StrictLoader
