"""The optional YAML config: global defaults plus per-command option defaults, validated with line numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from probe.errors import ConfigError

GLOBAL_KEYS: dict[str, type] = {
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
    lines: dict[tuple[str, ...], int] = field(default_factory=dict)

    def where(self, *path: str) -> str:
        """'file:line' of a key (a section, or a section's option)."""
        while path and path not in self.lines:
            path = path[:-1]
        return f"{self.path}:{self.lines.get(path, 1)}"


def load_config(path: Path | None) -> Config:
    """Read and check a config file; a missing path means an empty config."""
    if path is None:
        return Config()
    from probe.files.yamldoc import read_yaml

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}", hint="check --config or PROBE_CONFIG")
    doc = read_yaml(path)
    data = doc.data
    if data is None:
        return Config(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping of keys to values")
    lines = {
        tuple(str(k).replace("_", "-") if i == 0 else str(k) for i, k in enumerate(key)): line
        for key, line in doc.lines.items()
    }
    cfg = Config(path, lines=lines)
    for key, value in data.items():
        where = f"{path}:{doc.lines.get((key,), 1)}"
        if key in GLOBAL_KEYS:
            if not isinstance(value, GLOBAL_KEYS[key]) or (GLOBAL_KEYS[key] is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: {key!r} must be {GLOBAL_KEYS[key].__name__}, got {value!r}")
            if key == "seed" and isinstance(value, int) and not 0 <= value < 2**63:
                raise ConfigError(f"{where}: seed must be from 0 to {2**63 - 1}, got {value}")
            cfg.values[key] = value
        elif isinstance(value, dict):
            cfg.commands[str(key).replace("_", "-")] = {str(k): v for k, v in value.items()}
        else:
            known = ", ".join(sorted(GLOBAL_KEYS))
            raise ConfigError(
                f"{where}: unknown key {key!r}: use one of {known}, or a command name with a mapping of its options"
            )
    return cfg
