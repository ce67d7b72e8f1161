"""Image parameterisations: what the optimiser actually changes, and how it becomes an image batch.

Each parameterisation holds leaf tensors (`parameters()`), makes images in [0, 1] (`images()`),
and can return itself at a higher resolution (`resized`) for the progressive schedule.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from probe_invert.randomness import ImageRandom

# Square root of an RGB colour correlation (natural images, as used by lucid/lucent); its inverse
# maps pixels into roughly decorrelated channels, so the optimiser moves colour and luminance separately.
COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
FFT_MAGIC = 4.0  # lucent's spectrum-to-image amplitude divisor: keeps the initial image near grey


class PixelParam:
    """Plain pixels [B,3,H,W], clamped to [0, 1] after each step (the authors' parameterisation)."""

    def __init__(self, pixels: torch.Tensor) -> None:
        self.pixels = pixels.detach().clone().requires_grad_(True)

    @classmethod
    def random(cls, rng: ImageRandom, size: int, amplitude: float = 1.0) -> PixelParam:
        """Uniform noise around mid-grey, one stream per image; amplitude 1 is the authors' `rand(1, 3, 64, 64)`.

        A coarse start (4x4 pixels) needs a small amplitude: full-range noise there is a few big
        coloured patches that the optimiser never removes.
        """
        noise = rng.uniform((3, size, size), per_copy=False)
        return cls(noise if amplitude == 1.0 else 0.5 + (noise - 0.5) * amplitude)

    @property
    def size(self) -> int:
        return int(self.pixels.shape[-1])

    def parameters(self) -> list[torch.Tensor]:
        return [self.pixels]

    def images(self) -> torch.Tensor:
        return self.pixels

    def resized(self, size: int) -> PixelParam:
        """The same image at another resolution (bicubic); a new leaf, so the optimiser is rebuilt."""
        with torch.no_grad():
            up = (
                self.pixels
                if size == self.size
                else F.interpolate(self.pixels, size=(size, size), mode="bicubic", align_corners=False)
            )
        return PixelParam(up)

    @torch.no_grad()
    def clamp_(self) -> None:
        self.pixels.clamp_(0, 1)


def _frequency_scale(size: int, decay: float, device: torch.device) -> torch.Tensor:
    """1/f^decay over the rfft2 grid [size, size//2+1]; low frequencies get large steps."""
    fy = torch.fft.fftfreq(size, device=device)[:, None]
    fx = torch.fft.rfftfreq(size, device=device)[None, :]
    freq = torch.sqrt(fx * fx + fy * fy)
    return 1.0 / freq.clamp_min(1.0 / size) ** decay


class FFTParam:
    """A per-image spectrum (lucent style): scaled by 1/f, inverse FFT, colour-decorrelated, sigmoid.

    Optimising Fourier coefficients whitens the gradient, so low frequencies (shapes, blobs) move as
    fast as pixel noise; the result has far fewer high-frequency adversarial textures.
    """

    def __init__(self, spectrum: torch.Tensor, decay: float = 1.0, decorrelate: bool = True) -> None:
        self.spectrum = spectrum.detach().clone().requires_grad_(True)  # [B,3,S,S//2+1,2] real view
        self.decay = decay
        self.decorrelate = decorrelate
        self._scale = _frequency_scale(self.size, decay, spectrum.device)

    @classmethod
    def random(
        cls, rng: ImageRandom, size: int, std: float = 0.01, decay: float = 1.0, decorrelate: bool = True
    ) -> FFTParam:
        return cls(rng.normal((3, size, size // 2 + 1, 2), std=std, per_copy=False), decay, decorrelate)

    @property
    def size(self) -> int:
        return int(self.spectrum.shape[2])

    def parameters(self) -> list[torch.Tensor]:
        return [self.spectrum]

    def _colour_matrix(self) -> torch.Tensor:
        m = COLOUR_CORRELATION_SQRT.to(self.spectrum.device)
        return m / m.norm(dim=0).max()

    def _latent(self) -> torch.Tensor:
        """The pre-colour, pre-sigmoid image [B,3,S,S]."""
        spec = torch.view_as_complex(self.spectrum) * self._scale
        return torch.fft.irfft2(spec, s=(self.size, self.size), norm="ortho") / FFT_MAGIC

    def images(self) -> torch.Tensor:
        x = self._latent()
        if self.decorrelate:
            x = torch.einsum("ij,bjhw->bihw", self._colour_matrix(), x)
        return torch.sigmoid(x)

    def resized(self, size: int) -> FFTParam:
        """Upsample the latent image and re-express it as a spectrum at the new size."""
        with torch.no_grad():
            latent = F.interpolate(self._latent(), size=(size, size), mode="bicubic", align_corners=False)
            spec = torch.fft.rfft2(latent * FFT_MAGIC, norm="ortho") / _frequency_scale(size, self.decay, latent.device)
        return FFTParam(torch.view_as_real(spec).contiguous(), self.decay, self.decorrelate)

    def clamp_(self) -> None:
        """Nothing to clamp: the sigmoid keeps pixels in (0, 1)."""


Param = PixelParam | FFTParam


def make_param(settings, rng: ImageRandom, size: int, model_size: int = 0):
    """A fresh random parameterisation of len(rng) images at `size`, of the kind `settings.param` names."""
    return settings.build_param(model_size or size)(rng, size)


def schedule_sizes(start: int, resize_at: list[int], cap: int) -> dict[int, int]:
    """{step: new size}: the size doubles at each listed step, never beyond `cap` (the authors' rule).

    A step whose size is already capped stays in the map: the authors rebuild the optimiser there anyway.
    """
    sizes, size = {}, start
    for step in sorted(resize_at):
        size = max(size, min(2 * size, cap))
        sizes[step] = size
    return sizes
