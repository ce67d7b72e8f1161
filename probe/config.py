"""The optional YAML config: global defaults plus per-command option defaults, validated with line numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.errors import ConfigError

GLOBAL_KEYS: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "device": str,
    "precision": str,
    "out": str,
    "seed": int,
    "allow_pickle": bool,
    "labeller": str,
}


@dataclass
class Config:
    """Global defaults and click default_map sections (command name -> option defaults)."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: str) -> str:
        return f"{self.path}:{self.lines.get(key, 1)}"


def _load_yaml(path: Path):
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise ConfigError(f"{path}: not a UTF-8 text file") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{line}: invalid YAML: {problem}") from exc
    return node, data


def load_config(path: Path | None) -> Config:
    """Read and check a config file; a missing path means an empty config."""
    if path is None:
        return Config()
    path = Path(path)
    node, data = _load_yaml(path)
    if data is None:
        return Config(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping of keys to values")
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value} if node is not None else {}
    cfg = Config(path, lines=lines)
    for key, value in data.items():
        where = f"{path}:{lines.get(key, 1)}"
        if key in GLOBAL_KEYS:
            if not isinstance(value, GLOBAL_KEYS[key]) or (GLOBAL_KEYS[key] is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: {key!r} must be {GLOBAL_KEYS[key].__name__}, got {value!r}")
            cfg.values[key] = value
        elif isinstance(value, dict):
            cfg.commands[str(key).replace("_", "-")] = {str(k).replace("-", "_"): v for k, v in value.items()}
        else:
            known = ", ".join(sorted(GLOBAL_KEYS))
            raise ConfigError(f"{where}: unknown key {key!r}: use one of {known}, or a command name with a mapping of its options")
    return cfg
