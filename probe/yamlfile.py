"""YAML files that remember where each value came from, so every config error names file:line."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def _walk(node: Any, path: Key, lines: dict[Key, int]) -> None:
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = path + (key_node.value,)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[path + (i,)] = item.start_mark.line + 1
            _walk(item, path + (i,), lines)


def parse_yaml(text: str, source: str) -> YamlDoc:
    """Parse YAML text; syntax errors become ConfigError with the file and line."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{line}: invalid YAML: {problem}") from exc
    lines: dict[Key, int] = {(): 1}
    if node is not None:
        lines[()] = node.start_mark.line + 1
        _walk(node, (), lines)
    return YamlDoc(source, data, lines)


def read_yaml(path: Path) -> YamlDoc:
    """Read and parse a YAML file; a missing, binary or non-UTF-8 file is a ConfigError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"file not found: {path}") from exc
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file") from exc
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (contains NUL bytes)")
    return parse_yaml(text, str(path))
