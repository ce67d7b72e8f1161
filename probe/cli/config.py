"""The optional YAML config: global defaults plus per-command option defaults, validated with line numbers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, create_model

from probe.errors import ConfigError, short_repr
from probe.files.yamldoc import YamlDoc, read_yaml


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
            message = f"{key!r} must be {_type_name(key)}, got {short_repr(err['input'])}"
        else:
            message = f"{key}: {err['msg']}, got {short_repr(err['input'])}"
        raise ConfigError(f"{where(key)}: {message}") from None


def _one_type(annotation: Any, choices: tuple[Any, ...] | None) -> Any:
    """One value's pydantic type: a path is written as text, a choice is one of its values."""
    if choices:
        return Literal[tuple(getattr(c, "value", c) for c in choices)]
    if annotation is Path:
        return str
    return annotation if annotation in (bool, int, float, str) else Any


def _option_type(param: Any) -> Any:
    """The pydantic type of one command option, from the Python type the command declares for it
    (typer keeps it as `type_descriptor.annotation`) and its bounds (`min`, `max`)."""
    desc = getattr(param, "type_descriptor", None)
    annotation = desc.annotation if desc is not None else Any
    choices = desc.choices if desc is not None else None
    if get_origin(annotation) is list:
        inner = _one_type(get_args(annotation)[0], choices)
        return Annotated[list[inner], BeforeValidator(lambda v: [v] if isinstance(v, str) else v)] | None  # type: ignore[valid-type]
    base = _one_type(annotation, choices)
    bounds = {
        name: value
        for name, value in (("ge", getattr(param, "min", None)), ("le", getattr(param, "max", None)))
        if value is not None and base in (int, float) and not getattr(param, "clamp", False)
    }
    return (Annotated[base, Field(**bounds)] if bounds else base) | None


def section_model(name: str, params: list[Any]) -> type[BaseModel]:
    """The config section of `probe NAME` as a pydantic model built from the command's own options,
    so a value in the file is checked by the same type, bounds and choices as the flag."""
    fields: dict[str, Any] = {  # aliased: an option may be called `json` or `copy` like a BaseModel method
        f"option_{i}": (_option_type(p), Field(default=None, alias=p.name))
        for i, p in enumerate(params)
        if p.name is not None
    }
    # Not strict, unlike the global keys: a flag's value is text that click converts, and YAML reads
    # `lr: 1e-3` as text, so `steps: "3"` and `lr: 1e-3` mean what they would on the command line.
    config = ConfigDict(extra="forbid")
    return create_model(f"Section_{name.replace(' ', '_').replace('-', '_')}", __config__=config, **fields)


def check_section(
    name: str, params: list[Any], values: dict[str, Any], keys: dict[str, str], where: Callable[[str], str]
) -> dict[str, Any]:
    """A command section's values (by parameter name) through its model, as the command's default
    map; the first problem is a ConfigError at its key's file:line (`keys`: parameter name -> the key
    as written)."""
    try:
        checked = section_model(name, params).model_validate(values)
    except ValidationError as exc:
        err = exc.errors()[0]
        target = str(err["loc"][0])
        key = keys.get(target, target)
        message = str(err["msg"]).removeprefix("Value error, ")
        shown = short_repr(values.get(target))
        raise ConfigError(f"{where(key)}: {name}.{key}: bad value {shown}: {message}") from None
    return checked.model_dump(by_alias=True, exclude_unset=True)


@dataclass
class Config:
    """Global defaults and click default_map sections (command name -> option defaults)."""

    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)
    commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    doc: YamlDoc | None = None
    written: dict[str, Any] = field(default_factory=dict)  # section name (dashes) -> its key as written

    def where(self, *path: str) -> str:
        """'file:line' of a key (a section, or a section's option), from the file's YAML line map."""
        if self.doc is None:
            return f"{self.path}:1"
        if path:
            path = (self.written.get(path[0], path[0]), *path[1:])
        return self.doc.where(path)


def load_config(path: Path | None) -> Config:
    """Read and check a config file; a missing path means an empty config."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}", hint="check --config or PROBE_CONFIG")
    doc = read_yaml(path)
    data = doc.data
    if data is None:
        return Config(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping of keys to values")
    cfg = Config(path, doc=doc)
    globals_: dict[str, Any] = {}
    for key, value in data.items():
        if key in GlobalKeys.model_fields:
            globals_[key] = value
        elif isinstance(value, dict):
            name = str(key).replace("_", "-")
            cfg.commands[name] = {str(k): v for k, v in value.items()}
            cfg.written[name] = key
        else:
            known = ", ".join(sorted(GlobalKeys.model_fields))
            raise ConfigError(
                f"{doc.where((key,))}: unknown key {short_repr(key)}: use one of {known},"
                " or a command name with a mapping of its options"
            )
    cfg.values = _check_globals(globals_, lambda key: doc.where((key,)))
    return cfg
