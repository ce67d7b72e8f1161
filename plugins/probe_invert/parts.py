"""The invert plugin's own parts, registered through the same hooks a third-party plugin uses:
transforms (`transforms:` list), parameterisations (`param:`) and priors (`tv_weight`, `l1_weight`,
`priors:`). Lookups go through the registry, so a plugin's part is used exactly like a built-in one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TRANSFORMS: dict[str, tuple[Callable[[Any, int], Any], str]] = {}
PARAMS: dict[str, tuple[Callable[[Any, int, Any], Any], str]] = {}
PRIORS: dict[str, tuple[Callable[[Any], Any], str]] = {}


def _transform(name: str, about: str):
    def add(make: Callable[[Any, int], Any]) -> Callable[[Any, int], Any]:
        TRANSFORMS[name] = (make, about)
        return make

    return add


@_transform("jitter", "roll by up to jitter_pixels each way")
def _jitter(s: Any, model_size: int) -> Any:
    from probe_invert.transforms import Jitter

    return Jitter(s.jitter_pixels)


@_transform("affine", "random rotation, translation and scale with probability affine_p")
def _affine(s: Any, model_size: int) -> Any:
    from probe_invert.transforms import RandomAffine

    return RandomAffine(
        s.affine_p, s.affine_degrees, s.affine_translate, s.affine_scale_min, s.affine_scale_max, s.affine_padding
    )


@_transform("resize", "resample to the model's input size")
def _resize(s: Any, model_size: int) -> Any:
    from probe_invert.transforms import Resize

    return Resize(model_size)


@_transform("colour_shift", "per-copy colour shift: (x - mu) / sigma, mu ~ U(-m, m), log sigma ~ U(-s, s)")
def _colour_shift(s: Any, model_size: int) -> Any:
    from probe_invert.transforms import ColourShift

    return ColourShift(s.colour_shift_mean, s.colour_shift_std)


@_transform("colour_jitter", "brightness, contrast and saturation jitter")
def _colour_jitter(s: Any, model_size: int) -> Any:
    from probe_invert.transforms import ColourJitter

    return ColourJitter(s.colour_jitter_brightness, s.colour_jitter_contrast, s.colour_jitter_saturation)


@_transform("noise", "Gaussian pixel noise of std noise_std")
def _noise(s: Any, model_size: int) -> Any:
    from probe_invert.transforms import GaussianNoise

    return GaussianNoise(s.noise_std)


def _pixel(rng: Any, size: int, s: Any) -> Any:
    from probe_invert.param import PixelParam

    return PixelParam.random(rng, size, s.pixel_init)


def _fft(rng: Any, size: int, s: Any) -> Any:
    from probe_invert.param import FFTParam

    return FFTParam.random(rng, size, std=s.fft_init_std, decay=s.fft_decay, decorrelate=s.decorrelate)


PARAMS.update(
    {
        "pixel": (_pixel, "pixels in [0, 1] (the authors' parameterisation)"),
        "fft": (_fft, "lucent-style decorrelated Fourier spectrum"),
    }
)


def _tv(s: Any) -> Any:
    from probe_invert.objectives import TotalVariation

    return TotalVariation()


def _l1(s: Any) -> Any:
    from probe_invert.objectives import L1

    return L1(s.l1_center)


PRIORS.update(
    {"tv": (_tv, "total variation (weight tv_weight)"), "l1": (_l1, "L1 towards l1_center (weight l1_weight)")}
)


def register_all(register: Callable[..., None], parts: dict[str, tuple[Callable[..., Any], str]]) -> None:
    """Register every part of one table (name -> (factory, about)) through a hook's callback."""
    for name, (make, about) in parts.items():
        register(name, make, about)
