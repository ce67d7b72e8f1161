"""The optional YAML config: global defaults plus per-command option defaults, validated with line numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probe.errors import ConfigError


class GlobalKeys(BaseModel):
    """The config file's global keys: each declared once, with its type and bounds (strict: `seed: "1"`
    is an error, not a conversion). Command sections are checked against the commands' own options."""

    model_config = ConfigDict(extra="forbid", strict=True)

    model: str | None = Field(default=None, description="model spec, as --model")
    device: str | None = Field(default=None, description="device, as --device")
    precision: str | None = Field(default=None, description="fp32, bf16 or fp16, as --precision")
    out: str | None = Field(default=None, description="output folder, as --out")
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1, description="base seed, as --seed")
    allow_pickle: bool | None = Field(default=None, description="allow pickled weights, as --allow-pickle")
    labeller: str | None = Field(default=None, description="labelling model spec, as --labeller")


def _type_name(key: str) -> str:
    annotation = GlobalKeys.model_fields[key].annotation
    return next(a.__name__ for a in get_args(annotation) if a is not type(None))


def _check_globals(values: dict[str, Any], where: Callable[[str], str]) -> dict[str, Any]:
    """The global keys through the model; an error names the key's file:line."""
    try:
        return GlobalKeys.model_validate(values).model_dump(exclude_none=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0])
        if err["type"].endswith("_type"):
            message = f"{key!r} must be {_type_name(key)}, got {err['input']!r}"
        else:
            message = f"{key}: {err['msg']}, got {err['input']!r}"
        raise ConfigError(f"{where(key)}: {message}") from None


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
    globals_: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}:{doc.lines.get((key,), 1)}"
        if key in GlobalKeys.model_fields:
            globals_[key] = value
        elif isinstance(value, dict):
            cfg.commands[str(key).replace("_", "-")] = {str(k): v for k, v in value.items()}
        else:
            known = ", ".join(sorted(GlobalKeys.model_fields))
            raise ConfigError(
                f"{where}: unknown key {key!r}: use one of {known}, or a command name with a mapping of its options"
            )
    cfg.values = _check_globals(globals_, lambda key: f"{path}:{doc.lines.get((key,), 1)}")
    return cfg
