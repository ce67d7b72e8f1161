"""Every knob of an inversion in one dataclass, and the YAML presets (`paper`, `default`) that fill it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from probe.plugin import ConfigError, UsageError

LOSSES = ("distance", "cosine")
SCHEDULES = ("constant", "cosine")
#: Upper bounds that keep a typo from asking for hours of work or terabytes of memory.
LIMITS = {
    "steps": 1_000_000,
    "size": 4096,
    "max_size": 4096,
    "copies": 1024,
    "batch_size": 4096,
    "jitter_pixels": 4096,
    "snapshot_every": 1_000_000,
}


@dataclass
class InvertSettings:
    """One inversion recipe. Field names are the YAML keys and (with dashes) the CLI flags."""

    steps: int = 300
    lr: float = 0.05
    lr_schedule: str = "constant"  # constant | cosine (decays to 0 over `steps`)
    param: str = "pixel"  # pixel | fft (lucent-style decorrelated spectrum)
    size: int = 64  # starting resolution of the optimised image
    size_fraction: float = 0.0  # > 0: start at ceil(model input x this) instead of `size`, so doublings reach the input
    resize_at: list[int] = field(default_factory=list)  # steps at which the resolution doubles
    max_size: int = 0  # cap for the doubling; 0 = the model's input size (as the authors' code)
    pixel_init: float = 1.0  # pixel: initial noise amplitude around grey (1 = uniform [0, 1), as the authors)
    fft_decay: float = 1.0  # spectrum scale 1/f^decay
    fft_init_std: float = 0.01
    decorrelate: bool = True  # fft: optimise in a decorrelated colour space
    copies: int = 8  # augmented copies of each image per step
    transforms: list[str] = field(default_factory=lambda: ["affine", "resize", "colour_shift"])
    affine_p: float = 0.5
    affine_degrees: float = 30.0
    affine_translate: float = 0.1
    affine_scale_min: float = 0.7
    affine_scale_max: float = 1.2
    affine_padding: str = "border"  # border | zeros | reflection
    colour_shift_mean: float = 1.0  # mu ~ U(-m, m) per copy and channel
    colour_shift_std: float = 1.0  # sigma = exp(U(-s, s)) per copy and channel
    jitter_pixels: int = 0  # roll by up to this many pixels each way
    noise_std: float = 0.0
    colour_jitter_brightness: float = 0.0
    colour_jitter_contrast: float = 0.0
    colour_jitter_saturation: float = 0.0
    loss: str = "distance"  # distance: ||norm(V)-norm(T)||, as the authors; cosine: 1 - cos
    tv_weight: float = 0.005
    l1_weight: float = 0.0
    l1_center: float = 0.0  # L1 pulls pixels towards this value (0 = the paper's |x|; 0.5 = grey)
    priors: dict[str, float] = field(default_factory=dict)  # further registered priors (plugins'): name -> weight
    plugin_options: dict[str, Any] = field(default_factory=dict)  # knobs for plugins' parts, read by their factories
    min_cosine: float = 0.0  # floor: a final cosine below it records the image as failed
    grad_clip: float = 1.0  # per-image gradient norm clip; 0 = off
    clamp: bool = True  # pixel param: clamp to [0, 1] after each step
    batch_size: int = 32  # images optimised together per chunk
    snapshot_every: int = 0  # keep an image every K steps (0 = none)
    preset: str = "custom"  # which preset these came from (recorded in sidecars)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def prior_weights(self) -> dict[str, float]:
        """Every prior with its weight: tv and l1 from their own knobs, then `priors`."""
        return {"tv": self.tv_weight, "l1": self.l1_weight, **self.priors}

    def start_size(self, image_size: int) -> int:
        """The starting resolution on a model with `image_size` inputs: the same schedule then ends at
        any model's own input size when the fraction is 1 / 2**len(resize_at)."""
        return max(1, math.ceil(image_size * self.size_fraction - 1e-9)) if self.size_fraction > 0 else self.size

    def with_overrides(self, **overrides: Any) -> InvertSettings:
        """A copy with some knobs changed (None values are ignored), validated."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise UsageError(f"unknown invert setting {unknown[0]!r}", hint=f"known: {', '.join(sorted(known))}")
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "size" in changes and "size_fraction" not in changes:
            changes["size_fraction"] = 0.0  # an explicit --size means that size, on any model
        return replace(self, **changes).validated()

    def validated(self) -> InvertSettings:
        """Self, after checking every value; a UsageError names the bad one."""
        positive_ints = {"steps": self.steps, "size": self.size, "copies": self.copies, "batch_size": self.batch_size}
        for name, count in positive_ints.items():
            if int(count) < 1:
                raise UsageError(f"{name.replace('_', '-')} must be at least 1, got {count}")
        non_negative = {
            "lr": self.lr,
            "tv_weight": self.tv_weight,
            "l1_weight": self.l1_weight,
            "grad_clip": self.grad_clip,
            "noise_std": self.noise_std,
            "colour_shift_mean": self.colour_shift_mean,
            "colour_shift_std": self.colour_shift_std,
            "jitter_pixels": self.jitter_pixels,
            "snapshot_every": self.snapshot_every,
            "max_size": self.max_size,
            "fft_init_std": self.fft_init_std,
            "pixel_init": self.pixel_init,
            "l1_center": self.l1_center,
            "colour_jitter_brightness": self.colour_jitter_brightness,
            "colour_jitter_contrast": self.colour_jitter_contrast,
            "colour_jitter_saturation": self.colour_jitter_saturation,
        }
        for name, amount in non_negative.items():
            if not float(amount) >= 0:  # also rejects NaN
                raise UsageError(f"{name.replace('_', '-')} must be >= 0, got {amount}")
        for name, limit in LIMITS.items():
            if getattr(self, name) > limit:
                raise UsageError(
                    f"{name.replace('_', '-')} {getattr(self, name)} is over the limit of {limit}",
                    hint=f"use at most {limit}",
                )
        if any(int(s) > LIMITS["steps"] for s in self.resize_at):
            raise UsageError(f"resize-at steps must be at most {LIMITS['steps']}")
        if self.lr <= 0:
            raise UsageError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.affine_p <= 1:
            raise UsageError(f"affine-p must be in [0, 1], got {self.affine_p}")
        if not 0 < self.affine_scale_min <= self.affine_scale_max:
            raise UsageError("affine scale range must satisfy 0 < affine-scale-min <= affine-scale-max")
        if not 0.0 <= self.size_fraction <= 1.0:
            raise UsageError(
                f"size-fraction must be between 0 and 1, got {self.size_fraction}",
                hint="0 = use --size; 0.125 = an eighth of the model input",
            )
        if not 0.0 <= self.pixel_init <= 1.0:
            raise UsageError(
                f"pixel-init must be between 0 and 1, got {self.pixel_init}",
                hint="1 = uniform noise as the authors; smaller = closer to grey",
            )
        choices = {
            "loss": (self.loss, LOSSES),
            "lr_schedule": (self.lr_schedule, SCHEDULES),
            "affine_padding": (self.affine_padding, ("border", "zeros", "reflection")),
        }
        for name, (value, allowed) in choices.items():
            if value not in allowed:
                raise UsageError(
                    f"unknown {name.replace('_', '-')} {value!r}", hint=f"use one of: {', '.join(allowed)}"
                )
        _check_parts(self)
        if any(int(s) < 1 for s in self.resize_at):
            raise UsageError("resize-at steps must be >= 1")
        return replace(self, resize_at=sorted(int(s) for s in self.resize_at), transforms=list(self.transforms))


def _check_parts(s: InvertSettings) -> None:
    """Transforms, parameterisation and priors must name registered parts (built-in or a plugin's)."""
    from probe.plugin import registered

    def check(hook: str, names: list[str], what: str) -> None:
        known = registered(hook)
        bad = [n for n in names if n not in known]
        if bad:
            raise UsageError(
                f"unknown {what} {bad[0]!r}",
                hint=f"use one of: {', '.join(known) or 'none (is the invert plugin disabled?)'}",
            )

    check("register_invert_transforms", list(s.transforms), "transform")
    check("register_invert_params", [s.param], "param")
    if not isinstance(s.priors, dict) or not all(
        isinstance(w, (int, float)) and not isinstance(w, bool) for w in s.priors.values()
    ):
        raise UsageError("priors must map prior names to numeric weights, e.g. {tv: 0.005}")
    check("register_invert_priors", list(s.priors), "prior")
    if not isinstance(s.plugin_options, dict):
        raise UsageError("plugin_options must be a mapping of part name -> options")


def _presets_folder():
    return resources.files("probe_invert").joinpath("presets")


def list_presets() -> list[str]:
    """Names of the shipped presets (YAML files in the package's presets/ folder)."""
    return sorted(p.name[: -len(".yaml")] for p in _presets_folder().iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    from probe.plugin import parse_yaml

    data = parse_yaml(text, where).data or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: a preset must be a mapping of setting: value")
    known = {f.name for f in fields(InvertSettings)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown setting {unknown[0]!r}", hint=f"known: {', '.join(sorted(known))}")
    return data


def load_preset(name: str, **overrides: Any) -> InvertSettings:
    """A shipped preset by name (or a YAML file path), with keyword overrides applied (None = keep)."""
    if name in list_presets():
        text = _presets_folder().joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        where, label = f"preset {name}", name
    elif name.endswith((".yaml", ".yml")) and Path(name).is_file():
        text, where, label = Path(name).read_text(encoding="utf-8"), name, Path(name).stem
    else:
        raise UsageError(f"unknown preset {name!r}", hint=f"use one of: {', '.join(list_presets())}, or a .yaml file")
    data = _read_yaml(text, where)
    data.setdefault("preset", label)
    try:
        settings = InvertSettings(**data).validated()
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    return settings.with_overrides(**overrides)
