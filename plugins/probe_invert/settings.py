"""Every knob of an inversion, declared once: the `InvertSettings` pydantic model (type, bounds,
default, help per knob; its defaults are the `default` preset), the parts' own options models
(probe_invert.parts), and the YAML presets validated by them.

Parts are written as data (`transforms: [jitter, {affine: {p: 0.5}}]`, `param: {fft: {decay: 1}}`,
`priors: {tv: 0.03, l1: {weight: 0.0004, center: 0.5}}`) or, from Python, as ready-made objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from probe.plugin import ConfigError, UsageError
from probe_invert import defaults
from probe_invert.parts import PartEntry, build_part, registered_parts

Loc = tuple[Any, ...]


class SettingsError(UsageError):
    """A bad knob, with its location in the settings (`('transforms', 0, 'affine', 'p')`), so a
    YAML file can name its line and the command line its `--set` key."""

    def __init__(self, loc: Loc, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.loc = tuple(loc)
        self.message = message


#: Old flat keys and where each knob lives now (read by the error that names the new spelling).
RENAMED = {
    "affine_p": "transforms: [{affine: {p: ...}}]",
    "affine_degrees": "transforms: [{affine: {degrees: ...}}]",
    "affine_translate": "transforms: [{affine: {translate: ...}}]",
    "affine_scale_min": "transforms: [{affine: {scale_min: ...}}]",
    "affine_scale_max": "transforms: [{affine: {scale_max: ...}}]",
    "affine_padding": "transforms: [{affine: {padding: ...}}]",
    "colour_shift_mean": "transforms: [{colour_shift: {mean: ...}}]",
    "colour_shift_std": "transforms: [{colour_shift: {std: ...}}]",
    "colour_jitter_brightness": "transforms: [{colour_jitter: {brightness: ...}}]",
    "colour_jitter_contrast": "transforms: [{colour_jitter: {contrast: ...}}]",
    "colour_jitter_saturation": "transforms: [{colour_jitter: {saturation: ...}}]",
    "jitter_pixels": "transforms: [{jitter: {pixels: ...}}]",
    "noise_std": "transforms: [{noise: {std: ...}}]",
    "pixel_init": "param: {pixel: {init: ...}}",
    "fft_decay": "param: {fft: {decay: ...}}",
    "fft_init_std": "param: {fft: {init_std: ...}}",
    "decorrelate": "param: {fft: {decorrelate: ...}}",
    "tv_weight": "priors: {tv: WEIGHT}",
    "l1_weight": "priors: {l1: {weight: ...}}",
    "l1_center": "priors: {l1: {center: ...}}",
    "plugin_options": "each part's own options, e.g. transforms: [{my_part: {knob: ...}}]",
}


class Part(BaseModel):
    """One chosen part: its registered name and validated options (a weight for priors), or an
    object made in Python (`built`), used as it is."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    options: Any = None
    weight: float = 1.0
    built: Any = None

    def as_data(self, prior: bool = False) -> Any:
        """The YAML/JSON spelling (full options), as recorded in sidecars and result keys."""
        if self.built is not None:
            return {self.name: repr(self.built)} if not prior else {"weight": self.weight, "object": repr(self.built)}
        opts = self.options.model_dump() if isinstance(self.options, BaseModel) else dict(self.options or {})
        return {"weight": self.weight, **opts} if prior else {self.name: opts}

    def build(self, entry: PartEntry | None, model_size: int) -> Any:
        return self.built if self.built is not None else build_part(entry, self.options, model_size)  # type: ignore[arg-type]


def _named(value: Any, kind: str) -> tuple[str, Any]:
    """'name', {name: options} or {name: null} -> (name, options dict or None)."""
    if isinstance(value, str) and value.strip():
        return value.strip(), None
    if isinstance(value, dict) and len(value) == 1:
        name, opts = next(iter(value.items()))
        if isinstance(name, str) and (opts is None or isinstance(opts, dict)):
            return name, opts
    raise ValueError(f"a {kind} is a name or {{name: {{option: value}}}}, got {value!r}")


def _object_name(obj: Any) -> str:
    return f"<{type(obj).__name__}>"


def _part(value: Any, kind: str) -> Part:
    if isinstance(value, Part):
        return value
    if callable(value) and not isinstance(value, str):
        return Part(name=_object_name(value), built=value)
    name, opts = _named(value, kind)
    return Part(name=name, options=opts)


def _prior(name: Any, value: Any) -> Part:
    """`tv: 0.03`, `l1: {weight: 0.0004, center: 0.5}`, or an object made in Python."""
    if isinstance(value, Part):
        return value
    if callable(value):
        return Part(name=str(name), built=value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Part(name=str(name), weight=float(value))
    if isinstance(value, dict):
        opts = dict(value)
        weight = opts.pop("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise SettingsError(("priors", name, "weight"), f"a prior's weight is a number, got {weight!r}")
        return Part(name=str(name), weight=float(weight), options=opts)
    raise SettingsError(
        ("priors", name), f"a prior is a weight or {{weight: w, option: value}}, got {value!r}", hint="e.g. tv: 0.03"
    )


def _data(value: Any) -> Any:
    """A part default written as data (as a preset would), validated into Parts like any input."""
    return value


BUILTIN_PLUGINS = ("invert",)  # the invert plugin's own priors are tested; a plugin's are checked at run time


def checked_prior(prior: Any, plugin: str, name: str) -> Any:
    """A plugin's prior whose first output is checked (one finite penalty per image): a scalar or a
    wrong shape would otherwise be broadcast into every image's loss without a word. Checked once,
    so a GPU run does not synchronise every step."""
    from probe.plugin import check_prior_output

    seen: list[bool] = []

    def run(ctx: Any) -> Any:
        values = prior(ctx)
        if not seen:
            check_prior_output(values, int(ctx.images.shape[0]), plugin, name)
            seen.append(True)
        return values

    return run


class InvertSettings(BaseModel):
    """One inversion recipe. The defaults are the `default` preset; field names are the YAML keys,
    `--set` keys and knob-table rows."""

    model_config = ConfigDict(extra="forbid", validate_default=True, arbitrary_types_allowed=True, allow_inf_nan=False)

    steps: int = Field(default=defaults.STEPS, ge=1, le=1_000_000, description="optimisation steps")
    lr: float = Field(default=0.1, gt=0, le=1e6, description="Adam learning rate")
    lr_schedule: Literal["constant", "cosine"] = Field(
        default="cosine", description="constant, or cosine (decays to 0 over the run)"
    )
    loss: Literal["distance", "cosine"] = Field(
        default="cosine", description="distance: ||norm(V) - norm(T)|| (the authors'); cosine: 1 - cos"
    )
    size: int = Field(default=8, ge=1, le=4096, description="starting resolution when size_fraction is 0")
    size_fraction: float = Field(
        default=0.125, ge=0, le=1, description="> 0: start at ceil(model input x this) instead of `size`"
    )
    resize_at: list[float] = Field(
        default=[0.2222, 0.4444, 0.6667],
        description="fractions of the run at which the resolution doubles (any --steps ends at the same size)",
    )
    max_size: int = Field(default=0, ge=0, le=4096, description="cap for the doubling; 0 = the model's input size")
    copies: int = Field(default=defaults.COPIES, ge=1, le=1024, description="augmented copies of each image per step")
    transforms: list[Part] = Field(
        default=_data(
            ["jitter", {"affine": {"translate": 0.05}}, "resize", {"colour_shift": {"mean": 0.05, "std": 0.1}}, "noise"]
        ),
        description="augmentations applied in order to every copy, each with its own options",
    )
    param: Part = Field(default=_data("pixel"), description="what the optimiser changes: pixel or fft (with options)")
    priors: list[Part] = Field(
        default=_data({"tv": 0.03, "l1": {"weight": 0.0004, "center": 0.5}}),
        description="penalties added with a weight: {name: weight} or {name: {weight: w, option: value}}",
    )
    min_cosine: float = Field(
        default=0.1, ge=-1, le=1, description="a final cosine below it records the image failed (a sanity floor)"
    )
    grad_clip: float = Field(default=1.0, ge=0, description="per-image gradient norm clip; 0 = off")
    clamp: bool = Field(default=True, description="pixel param: clamp to [0, 1] after each step")
    batch_size: int = Field(
        default=defaults.BATCH_SIZE, ge=1, le=4096, description="images optimised together per chunk"
    )
    snapshot_every: int = Field(default=0, ge=0, le=1_000_000, description="keep an image every K steps (0 = none)")
    preset: str = Field(default="default", description="which preset these came from (recorded in sidecars)")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in RENAMED:
                    raise SettingsError(
                        (key,), f"{key!r} is now {RENAMED[key]}", hint="every knob: docs/probes/invert.md"
                    )
        return data

    @field_validator("resize_at", mode="before")
    @classmethod
    def _fractions(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, (int, float)) and not isinstance(v, bool) and not 0 < v < 1:
                    raise SettingsError(
                        ("resize_at", i),
                        f"resize_at holds fractions of the run between 0 and 1, got {v!r}",
                        hint="e.g. 900 of 3400 steps is 0.2647",
                    )
        return value

    @field_validator("transforms", mode="before")
    @classmethod
    def _transforms(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ValueError("transforms is a list, e.g. [jitter, {affine: {p: 0.5}}, resize]")
        out = []
        for i, item in enumerate(value):
            try:
                out.append(_part(item, "transform"))
            except ValueError as exc:
                raise SettingsError(("transforms", i), str(exc)) from None
        return out

    @field_validator("param", mode="before")
    @classmethod
    def _param(cls, value: Any) -> Any:
        return _part(value, "param")

    @field_validator("priors", mode="before")
    @classmethod
    def _priors(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return [_prior(name, v) for name, v in value.items()]
        if isinstance(value, list):
            return [v if isinstance(v, Part) else _prior(_object_name(v), v) for v in value]
        raise ValueError("priors is a mapping of prior names to weights, e.g. {tv: 0.005}")

    @model_validator(mode="after")
    def _parts(self) -> InvertSettings:
        """Each part names a registered one (built-in or a plugin's) and its options pass that part's model."""
        self.transforms = [_checked(p, "transform", ("transforms", i)) for i, p in enumerate(self.transforms)]
        self.param = _checked(self.param, "param", ("param",))
        self.priors = [_checked(p, "prior", ("priors",)) for p in self.priors]
        names = [p.name for p in self.priors]
        if len(set(names)) != len(names):
            raise SettingsError(("priors",), "a prior is listed twice")
        for p in self.priors:
            if not p.weight >= 0 or not math.isfinite(p.weight):
                raise SettingsError(("priors", p.name), f"a prior's weight must be >= 0, got {p.weight}")
        self.resize_at = sorted(float(f) for f in self.resize_at)
        return self

    # ------------------------------------------------------------------ reading the settings

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: every knob, each part with its full options (sidecars, result keys, experiment specs)."""
        out = self.model_dump(exclude={"transforms", "param", "priors"})
        out["transforms"] = [p.as_data() for p in self.transforms]
        out["param"] = self.param.as_data()
        out["priors"] = {p.name: p.as_data(prior=True) for p in self.priors}
        return out

    def validated(self) -> InvertSettings:
        """Self: a model instance is valid by construction."""
        return self

    def start_size(self, image_size: int) -> int:
        """The starting resolution on a model with `image_size` inputs: the same schedule then ends at
        any model's own input size when the fraction is 1 / 2**len(resize_at)."""
        return max(1, math.ceil(image_size * self.size_fraction - 1e-9)) if self.size_fraction > 0 else self.size

    def resize_steps(self) -> list[int]:
        """The steps at which the resolution doubles: `resize_at` fractions of this run's `steps`, each
        after the one before and before the last step where the run is long enough, so a short run
        still ends at the full size."""
        out: list[int] = []
        for f in self.resize_at:
            step = max(round(f * self.steps), out[-1] + 1 if out else 1)
            out.append(min(step, max(1, self.steps - 1)))
        return sorted(set(out))

    def size_schedule(self, image_size: int) -> dict[int, int]:
        """{step: resolution from that step}, starting at step 0, on a model with `image_size` inputs."""
        from probe_invert.param import schedule_sizes

        start = self.start_size(image_size)
        cap = max(self.max_size or image_size, start)
        return {0: start, **schedule_sizes(start, self.resize_steps(), cap)}

    def build_transforms(self, model_size: int) -> list[Any]:
        table = registered_parts("transform")
        return [p.build(table.get(p.name), model_size) for p in self.transforms]

    def build_param(self, model_size: int) -> Callable[[Any, int], Any]:
        """The initialiser `init(rng, size) -> Param` of the chosen parameterisation."""
        return self.param.build(registered_parts("param").get(self.param.name), model_size)

    def build_priors(self, model_size: int) -> Iterator[tuple[float, Any]]:
        """(weight, prior) for every prior with a non-zero weight."""
        table = registered_parts("prior")
        for p in self.priors:
            if p.weight:
                entry = table.get(p.name)
                prior = p.build(entry, model_size)
                if entry is not None and entry.plugin not in BUILTIN_PLUGINS:
                    prior = checked_prior(prior, entry.plugin, p.name)
                yield p.weight, prior

    # ------------------------------------------------------------------ changed copies

    def with_overrides(self, **overrides: Any) -> InvertSettings:
        """A copy with some top-level knobs changed (None values are ignored), validated."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "size" in changes and "size_fraction" not in changes:
            changes["size_fraction"] = 0.0  # an explicit size means that size, on any model
        return validate_settings({**self.to_dict(), **changes}, parts=self._objects())

    def with_set(self, assignments: list[str]) -> InvertSettings:
        """A copy with `KEY=VALUE` assignments applied in order (dotted keys reach into parts:
        `transforms.affine.degrees=20`, `priors.tv=0.1`, `param.fft.decay=1.5`); values are YAML."""
        data = self.to_dict()
        for text in assignments:
            key, sep, raw = text.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"bad --set {text!r}", hint="use KEY=VALUE, e.g. --set lr=0.05")
            path = tuple(key.strip().split("."))
            if path[0] == "size" and len(path) == 1 and "size_fraction" not in {a.split("=")[0] for a in assignments}:
                data["size_fraction"] = 0.0
            _assign(_spelled_out(data), path, _yaml_value(raw), text)
        try:
            return validate_settings(data, parts=self._objects())
        except SettingsError as exc:
            key = ".".join(str(p) for p in exc.loc if not isinstance(p, int))  # parts by name, as --set spells them
            raise UsageError(f"bad --set: {key}: {exc.message}", hint=exc.hint) from None

    def _objects(self) -> dict[str, Part]:
        """Parts made in Python, which data cannot spell, kept by their recorded names."""
        return {p.name: p for p in [*self.transforms, self.param, *self.priors] if p.built is not None}


def _yaml_value(raw: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _spelled_out(data: dict[str, Any]) -> dict[str, Any]:
    """Parts in their long spelling (`{name: {options}}`, priors `{name: {weight: w}}`), so a dotted
    key can reach into any of them after an earlier assignment gave a short one."""

    def long(item: Any) -> Any:
        return {item: {}} if isinstance(item, str) else item

    transforms = data.get("transforms")
    if isinstance(transforms, str):
        transforms = [t.strip() for t in transforms.split(",") if t.strip()]
    if isinstance(transforms, list):
        data["transforms"] = [long(t) for t in transforms]
    data["param"] = long(data.get("param"))
    if isinstance(data.get("priors"), dict):
        data["priors"] = {
            k: {"weight": v} if isinstance(v, (int, float)) and not isinstance(v, bool) else v
            for k, v in data["priors"].items()
        }
    return data


def _assign(data: dict[str, Any], path: tuple[str, ...], value: Any, text: str) -> None:
    """Set `value` at a dotted path of the settings data; a list of parts is entered by part name."""
    node: Any = data
    for i, key in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, list):  # transforms: find the part by name
            found = [j for j, item in enumerate(node) if isinstance(item, dict) and key in item]
            if not found:
                names = ", ".join(next(iter(item)) for item in node if isinstance(item, dict))
                raise UsageError(
                    f"bad --set {text!r}: no {key!r} in {'.'.join(path[:i])} ({names or 'empty'})",
                    hint=f"add it first, e.g. --set {'.'.join(path[:i])}=[{names + ', ' if names else ''}{key}]",
                )
            j = found[0]
            if last:
                node[j] = {key: value}
                return
            node = node[j][key]
            continue
        if not isinstance(node, dict):
            raise UsageError(f"bad --set {text!r}: {'.'.join(path[:i])} has no parts")
        if path[:i] == ("param",) and key not in node:
            raise UsageError(
                f"bad --set {text!r}: param is {next(iter(node), '?')!r}", hint=f"choose it first: --set param={key}"
            )
        if last:
            node[key] = value
            return
        if node.get(key) is None:
            node[key] = {}
        node = node[key]


def _checked(part: Part, kind: str, loc: Loc) -> Part:
    """The part with its options validated by its registered options model."""
    if part.built is not None:
        return part
    table = registered_parts(kind)
    if part.name not in table:
        where = (*loc, part.name) if kind == "prior" else loc
        raise SettingsError(
            where,
            f"unknown {kind} {part.name!r}",
            hint=f"use one of: {', '.join(table) or 'none (is the invert plugin disabled?)'}",
        )
    model = table[part.name].options
    if model is None:  # an untyped part: its options as a plain dict
        return part.model_copy(update={"options": dict(part.options or {})})
    if isinstance(part.options, BaseModel):
        return part
    raw = part.options or {}
    try:
        options = model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise SettingsError((*loc, part.name, *err["loc"]), _message(err)) from None
    return part.model_copy(update={"options": options})


def _message(err: Any) -> str:
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        return "unknown option"
    shown = "input" in err and not isinstance(err["input"], dict) and err.get("type") != "missing"
    return f"{msg}, got {err['input']!r}" if shown else msg


def validate_settings(data: Any, parts: dict[str, Part] | None = None) -> InvertSettings:
    """Settings from data (a preset's mapping plus overrides); a SettingsError names the bad knob's location.

    `parts`: objects made in Python, restored where the data names them (`to_dict` spells them by name)."""
    if parts:
        data = dict(data)
        data["transforms"] = [parts.get(next(iter(t)), t) if isinstance(t, dict) else t for t in data["transforms"]]
        if isinstance(data.get("param"), dict) and next(iter(data["param"]), None) in parts:
            data["param"] = parts[next(iter(data["param"]))]
        if isinstance(data.get("priors"), dict):
            data["priors"] = {k: parts.get(k, v) for k, v in data["priors"].items()}
    try:
        return InvertSettings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        if err.get("type") == "extra_forbidden":
            known = ", ".join(InvertSettings.model_fields)
            raise SettingsError(loc, f"unknown setting {loc[-1]!r}", hint=f"known: {known}") from None
        raise SettingsError(loc, _message(err)) from None


# ------------------------------------------------------------------ presets


def _presets_folder():
    return resources.files("probe_invert").joinpath("presets")


def list_presets() -> list[str]:
    """Names of the shipped presets (YAML files in the package's presets/ folder)."""
    return sorted(p.name[: -len(".yaml")] for p in _presets_folder().iterdir() if p.name.endswith(".yaml"))


def preset_doc(name: str):
    """The parsed YAML of a shipped preset (by name) or a preset file, with its line map."""
    from probe.plugin import parse_yaml

    if name in list_presets():
        text = _presets_folder().joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        doc = parse_yaml(text, f"preset {name}")
    elif name.endswith((".yaml", ".yml")) and Path(name).is_file():
        doc = parse_yaml(Path(name).read_text(encoding="utf-8"), name)
    else:
        raise UsageError(f"unknown preset {name!r}", hint=f"use one of: {', '.join(list_presets())}, or a .yaml file")
    if doc.data is None:
        doc.data = {}
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{doc.where()}: a preset must be a mapping of setting: value")
    return doc


def load_preset(name: str, **overrides: Any) -> InvertSettings:
    """A shipped preset by name (or a YAML file path), with keyword overrides applied (None = keep).

    A preset names only what differs from `default` (the model's defaults); each error names the
    preset's file:line."""
    doc = preset_doc(name)
    data = {"preset": name if name in list_presets() else Path(name).stem, **doc.data}
    try:
        settings = validate_settings(data)
    except SettingsError as exc:
        raise doc.error(exc.loc, exc.message, hint=exc.hint) from None
    return settings.with_overrides(**overrides) if any(v is not None for v in overrides.values()) else settings


# ------------------------------------------------------------------ the knob table


def knobs() -> list[tuple[str, str, Any, str]]:
    """(dotted key, type, default, help) for every knob: the settings' own (parts as the default
    preset writes them), then each built-in part's options (`transforms.affine.p`, `param.fft.decay`,
    `priors.l1.center`; a prior's `weight` has no default: the preset gives it)."""
    from probe_invert.parts import PARAMS, PRIORS, TRANSFORMS

    rows: list[tuple[str, str, Any, str]] = []
    for name, f in InvertSettings.model_fields.items():
        kind = "mapping of priors" if name == "priors" else _type_name(f.annotation)
        rows.append((name, kind, f.default, f.description or ""))
    for group, table in (("transforms", TRANSFORMS), ("param", PARAMS), ("priors", PRIORS)):
        for part, (_, model, _about) in table.items():
            if group == "priors":
                rows.append((f"priors.{part}.weight", "float >= 0", None, f"weight of the {part} prior (0 = off)"))
            for opt, f in model.model_fields.items():
                rows.append((f"{group}.{part}.{opt}", _type_name(f.annotation), f.default, f.description or ""))
    return rows


def _type_name(annotation: Any) -> str:
    from typing import get_args, get_origin

    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in get_args(annotation))
    if annotation is Part:
        return "part"
    if get_origin(annotation) is list:
        inner = get_args(annotation)[0]
        return "list of parts" if inner is Part else f"list of {inner.__name__}"
    return getattr(annotation, "__name__", str(annotation))


def knob_table() -> str:
    """The knob table of docs/probes/invert.md (markdown), generated from the models."""
    import json

    lines = ["| key | type | default | what it does |", "|---|---|---|---|"]
    for key, kind, default, about in knobs():
        shown = "—" if default is None else f"`{json.dumps(default)}`"
        escaped = about.replace("|", "\\|")  # a pipe would end the table cell
        lines.append(f"| `{key}` | {kind} | {shown} | {escaped} |")
    return "\n".join(lines)
