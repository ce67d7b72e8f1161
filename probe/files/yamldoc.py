"""YAML files that remember where each value came from, so every config error names file:line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from probe.errors import ConfigError

Key = tuple[Any, ...]


@dataclass
class YamlDoc:
    """Parsed data plus the line of every mapping key and sequence item, by path from the root."""

    source: str
    data: Any
    lines: dict[Key, int] = field(default_factory=dict)

    def where(self, path: Key = ()) -> str:
        """'file:line' of the deepest known ancestor of path."""
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return f"{self.source}:{self.lines.get(path, 1)}"

    def error(self, path: Key, message: str, hint: str | None = None) -> ConfigError:
        """A ConfigError that says where and what: 'file:line: steps[1].invert.seeds: message'."""
        label = dotted(path)
        return ConfigError(f"{self.where(path)}: {label + ': ' if label else ''}{message}", hint=hint)


def dotted(path: Key) -> str:
    """('steps', 1, 'invert', 'seeds') -> 'steps[1].invert.seeds'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


MAX_ALIAS_EXPANSION = 10_000
"""Values that aliases may add beyond the file's own: enough for any config, far short of a bomb."""

MAX_ALIAS_CHARS = 1_000_000
"""Characters of text that aliases may add beyond the file's own: a few aliased values repeating one
long text would otherwise grow a small file into hundreds of megabytes once read or printed."""


@dataclass
class _Walk:
    """State of one walk over a composed document: lines found, nodes seen, alias expansion spent."""

    source: str
    lines: dict[Key, int]
    seen: set[int] = field(default_factory=set)
    expanded: int = 0
    expanded_chars: int = 0

    def line_of(self, node: Any, parent: Key) -> int:
        """A node's own line; inside an alias's copy, the line where the alias is used."""
        if id(node) in self.seen and parent in self.lines:
            return self.lines[parent]
        return node.start_mark.line + 1

    def refuse(self, node: Any, message: str, path: Key | None = None) -> ConfigError:
        """The error at the line of `path` (where an alias is used), else of the node itself."""
        line = self.lines.get(path) if path is not None else None
        return ConfigError(
            f"{self.source}:{line or node.start_mark.line + 1}: {message}",
            hint="write the values out instead of using YAML aliases (*name)",
        )


def _walk(node: Any, path: Key, state: _Walk, ancestors: frozenset[int] = frozenset()) -> None:
    """Record the line of every key and item; an alias that contains itself, or aliases that
    expand past MAX_ALIAS_EXPANSION values or MAX_ALIAS_CHARS characters (a 'billion laughs' file),
    are a ConfigError."""
    if id(node) in ancestors:
        raise state.refuse(node, "recursive YAML alias (a value that contains itself)")
    if id(node) in state.seen:
        state.expanded += 1
        if state.expanded > MAX_ALIAS_EXPANSION:
            raise state.refuse(node, f"YAML aliases expand to more than {MAX_ALIAS_EXPANSION} values", path)
        if isinstance(node, yaml.ScalarNode):
            state.expanded_chars += len(node.value)
            if state.expanded_chars > MAX_ALIAS_CHARS:
                raise state.refuse(node, f"YAML aliases expand to more than {MAX_ALIAS_CHARS} characters of text", path)
    state.seen.add(id(node))
    inner = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*path, key_node.value)
            state.lines[child] = state.line_of(key_node, path)
            _walk(value_node, child, state, inner)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = (*path, i)
            state.lines[child] = state.line_of(item, path)
            _walk(item, child, state, inner)


def parse_yaml(text: str, source: str) -> YamlDoc:
    """Parse YAML text; syntax errors become ConfigError with the file and line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        lines: dict[Key, int] = {(): 1}
        if node is not None:
            lines[()] = node.start_mark.line + 1
            _walk(node, (), _Walk(source, lines))  # before constructing: refuses alias bombs
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{line}: invalid YAML: {problem}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{source}: YAML nested too deeply", hint="flatten the file") from exc
    except MemoryError:
        raise ConfigError(f"{source}: YAML file too large to read in the memory available") from None
    return YamlDoc(source, data, lines)


def read_yaml(path: Path) -> YamlDoc:
    """Read and parse a YAML file; a missing, binary or non-UTF-8 file is a ConfigError."""
    from probe.files.checks import not_regular

    path = Path(path)
    kind = not_regular(path)
    if kind not in (None, "a folder"):  # a FIFO or /dev/zero would be read forever
        raise ConfigError(f"{path} is {kind}, not a YAML file", hint="pass the path of a regular .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"file not found: {path}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a folder, not a YAML file", hint="pass the path of a .yaml file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (contains NUL bytes)")
    return parse_yaml(text, str(path))
