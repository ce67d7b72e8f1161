"""The invert plugin's own parts, registered through the same hooks a third-party plugin uses:
transforms (`transforms:`), parameterisations (`param:`) and priors (`priors:`).

Every part is `register(name, make, about, options=OptionsModel)`: `OptionsModel` is a pydantic
model declaring the part's knobs (type, bounds, default, help) and `make(options, model_size)` builds
the part from a validated instance of it. One convention for all three kinds: a transform factory
returns `t(views, rng) -> views`, a prior factory `p(ctx) -> [B]`, a parameterisation factory an
initialiser `init(rng, size) -> Param` (as lucent's `param_f`). Lookups go through `registered_parts`,
so a plugin's part is used exactly like a built-in one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PartOptions(BaseModel):
    """Base of every part's options: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class PartEntry:
    """A registered part: its factory, its options model (None: an untyped part, options as a dict), about."""

    name: str
    make: Callable[..., Any]
    options: type[BaseModel] | None
    about: str
    plugin: str = ""


def registered_parts(kind: str) -> dict[str, PartEntry]:
    """Every registered part of one kind ('transform', 'param', 'prior'), by name: the one place
    the invert plugin reads the registry."""
    from probe.plugin import invert_params, invert_priors, invert_transforms

    found: Any = {"transform": invert_transforms, "param": invert_params, "prior": invert_priors}[kind]()
    return {name: PartEntry(name, ext.make, ext.options_model, ext.about, ext.plugin) for name, ext in found.items()}


def build_part(entry: PartEntry, options: Any, model_size: int) -> Any:
    """`make(options, model_size)`; factories written for the first plugin API (`make(settings)` for
    priors, `make(rng, size, settings)` for params) still work: they get the options in place of the
    settings object."""
    positional = [
        p
        for p in inspect.signature(entry.make).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty
    ]
    if len(positional) == 1:
        return entry.make(options)
    if len(positional) == 3:  # make(rng, size, settings): a parameterisation of API 1
        return lambda rng, size: entry.make(rng, size, options)
    return entry.make(options, model_size)


# ------------------------------------------------------------------ transforms


class JitterOptions(PartOptions):
    pixels: int = Field(default=4, ge=0, le=4096, description="roll each copy by up to this many pixels each way")


class AffineOptions(PartOptions):
    p: float = Field(default=0.5, ge=0, le=1, description="probability that a copy is moved")
    degrees: float = Field(default=30.0, ge=0, le=360, description="rotation range, ± degrees")
    translate: float = Field(default=0.1, ge=0, le=1, description="shift range, ± fraction of the size")
    scale_min: float = Field(default=0.7, gt=0, description="smallest scale factor")
    scale_max: float = Field(default=1.2, gt=0, description="largest scale factor (at least scale_min)")
    padding: Literal["border", "zeros", "reflection"] = Field(
        default="border", description="what fills the uncovered edge"
    )

    @model_validator(mode="after")
    def _scale_range(self) -> AffineOptions:
        if self.scale_min > self.scale_max:
            raise ValueError("scale_min must be at most scale_max")
        return self


class ResizeOptions(PartOptions):
    pass


class ColourShiftOptions(PartOptions):
    mean: float = Field(default=1.0, ge=0, description="mu ~ U(-mean, mean) per copy and channel")
    std: float = Field(default=1.0, ge=0, description="sigma = exp(U(-std, std)) per copy and channel")


class ColourJitterOptions(PartOptions):
    brightness: float = Field(default=0.1, ge=0, description="brightness factor in [1 - a, 1 + a]")
    contrast: float = Field(default=0.1, ge=0, description="contrast factor in [1 - a, 1 + a]")
    saturation: float = Field(default=0.1, ge=0, description="saturation factor in [1 - a, 1 + a]")


class NoiseOptions(PartOptions):
    std: float = Field(default=0.05, ge=0, description="standard deviation of the Gaussian pixel noise")


def _jitter(o: JitterOptions, model_size: int) -> Any:
    from probe_invert.transforms import Jitter

    return Jitter(o.pixels)


def _affine(o: AffineOptions, model_size: int) -> Any:
    from probe_invert.transforms import RandomAffine

    return RandomAffine(o.p, o.degrees, o.translate, o.scale_min, o.scale_max, o.padding)


def _resize(o: ResizeOptions, model_size: int) -> Any:
    from probe_invert.transforms import Resize

    return Resize(model_size)


def _colour_shift(o: ColourShiftOptions, model_size: int) -> Any:
    from probe_invert.transforms import ColourShift

    return ColourShift(o.mean, o.std)


def _colour_jitter(o: ColourJitterOptions, model_size: int) -> Any:
    from probe_invert.transforms import ColourJitter

    return ColourJitter(o.brightness, o.contrast, o.saturation)


def _noise(o: NoiseOptions, model_size: int) -> Any:
    from probe_invert.transforms import GaussianNoise

    return GaussianNoise(o.std)


# ------------------------------------------------------------------ parameterisations


class PixelOptions(PartOptions):
    init: float = Field(
        default=1.0, ge=0, le=1, description="initial noise amplitude around grey (1 = uniform [0, 1), as the authors)"
    )


class FFTOptions(PartOptions):
    decay: float = Field(default=1.0, ge=0, description="spectrum scale 1/f^decay")
    init_std: float = Field(default=0.01, ge=0, description="standard deviation of the initial spectrum")
    decorrelate: bool = Field(default=True, description="optimise in a decorrelated colour space")


def _pixel(o: PixelOptions, model_size: int) -> Any:
    from probe_invert.param import PixelParam

    return lambda rng, size: PixelParam.random(rng, size, o.init)


def _fft(o: FFTOptions, model_size: int) -> Any:
    from probe_invert.param import FFTParam

    return lambda rng, size: FFTParam.random(rng, size, std=o.init_std, decay=o.decay, decorrelate=o.decorrelate)


# ------------------------------------------------------------------ priors


class TVOptions(PartOptions):
    pass


class L1Options(PartOptions):
    center: float = Field(
        default=0.0, ge=0, le=1, description="value L1 pulls pixels towards (0 = the paper's |x|, 0.5 = grey)"
    )


def _tv(o: TVOptions, model_size: int) -> Any:
    from probe_invert.objectives import TotalVariation

    return TotalVariation()


def _l1(o: L1Options, model_size: int) -> Any:
    from probe_invert.objectives import L1

    return L1(o.center)


Table = dict[str, tuple[Callable[..., Any], type[PartOptions], str]]

TRANSFORMS: Table = {
    "jitter": (_jitter, JitterOptions, "roll by up to `pixels` each way"),
    "affine": (_affine, AffineOptions, "random rotation, translation and scale with probability `p`"),
    "resize": (_resize, ResizeOptions, "resample to the model's input size"),
    "colour_shift": (_colour_shift, ColourShiftOptions, "per-copy colour shift: (x - mu) / sigma"),
    "colour_jitter": (_colour_jitter, ColourJitterOptions, "brightness, contrast and saturation jitter"),
    "noise": (_noise, NoiseOptions, "Gaussian pixel noise"),
}
PARAMS: Table = {
    "pixel": (_pixel, PixelOptions, "pixels in [0, 1] (the authors' parameterisation)"),
    "fft": (_fft, FFTOptions, "lucent-style decorrelated Fourier spectrum"),
}
PRIORS: Table = {
    "tv": (_tv, TVOptions, "total variation (4-direction L2, as the authors)"),
    "l1": (_l1, L1Options, "L1 distance of every pixel from `center`"),
}


def register_all(register: Callable[..., None], parts: Table) -> None:
    """Register every part of one table (name -> (factory, options model, about)) through a hook's callback."""
    for name, (make, options, about) in parts.items():
        register(name, make, about, options=options)
