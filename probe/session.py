"""Session: the one loaded model a process shares, with its device, precision and encoders."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from probe.devices import PRECISIONS, resolve_device
from probe.encoding.image import fast_image_tower
from probe.encoding.text import (
    TruncatedText,
    encode_bucketed,
    encode_truncated,
    find_text_tower,
    pool_positions,
    tokenize_checked,
)
from probe.errors import ModelError, UsageError
from probe.models.loading import LoadedModel, load_model
from probe.models.preprocess import ImageTransform, centre_square
from probe.models.specs import DEFAULT_MODEL, ModelSpec, parse_model_spec


class Session:
    """A frozen CLIP model on one device; every probe in the process encodes through it."""

    def __init__(self, loaded: LoadedModel, spec: ModelSpec, device: torch.device, precision: str = "fp32") -> None:
        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision {precision!r}", hint="use fp32, bf16 or fp16")
        if precision == "fp16" and device.type == "cpu":
            raise UsageError("fp16 autocast is not supported on CPU", hint="use fp32 or bf16 on CPU")
        self.spec = spec
        self.device = device
        self.precision = precision
        self.model: Any = loaded.model.to(device)  # an open_clip model (untyped): its towers are read by name
        self.tokenizer = loaded.tokenizer
        self.image_size = loaded.image_size
        self.mean = torch.tensor(loaded.mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(loaded.std, device=device).view(1, 3, 1, 1)
        self.image_transform: ImageTransform = loaded.image_transform or centre_square
        self.fingerprint = loaded.fingerprint
        self.context_length = int(getattr(self.tokenizer, "context_length", 77) or 77)
        self._tower = find_text_tower(self.model)
        self._text = TruncatedText(self._tower) if self._tower is not None else None

    @classmethod
    def open(
        cls, model: str = DEFAULT_MODEL, device: str = "auto", precision: str = "fp32", allow_pickle: bool = False
    ) -> Session:
        """Parse the spec, load the weights, put the model on the device."""
        spec = parse_model_spec(model)
        target = resolve_device(device)  # bad device or precision fail before a slow model load
        if precision not in PRECISIONS:
            raise UsageError(f"unknown precision {precision!r}", hint="use fp32, bf16 or fp16")
        session = cls(load_model(spec, allow_pickle=allow_pickle), spec, target, precision)
        session.check_working()
        return session

    def check_working(self) -> None:
        """Refuse a model that would answer every probe with noise: a tokenizer that gives different
        texts the same tokens (missing tokenizer files) or non-finite embeddings (damaged weights)."""
        pair = ["a red star", "a blue circle on the left"]
        ids = self.tokenize(pair, truncate=True)
        if ids.shape[0] == 2 and torch.equal(ids[0], ids[1]):
            raise ModelError(
                f"{self.name}: its tokenizer gives different texts the same tokens",
                hint="its tokenizer files are missing or broken: check the model folder or cache",
            )
        if not torch.isfinite(self.encode_text(pair, truncate=True)).all():
            raise ModelError(
                f"{self.name}: its text embeddings are not finite (NaN or inf)",
                hint="its weights are damaged: check or re-download the checkpoint",
            )

    @property
    def name(self) -> str:
        """The model spec as given, e.g. `ViT-B-16@openai`."""
        return self.spec.text

    @property
    def fast_text(self) -> bool:
        """Whether encode_text uses the exact truncated path for this model's text tower."""
        return self._tower is not None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed precision for bf16/fp16 sessions; a no-op in fp32."""
        if self.precision == "fp32":
            yield
        else:
            with torch.autocast(device_type=self.device.type, dtype=PRECISIONS[self.precision]):
                yield

    def tokenize(self, texts: list[str], truncate: bool = False) -> torch.Tensor:
        """Token ids [N, context]; prompts over the context are an error unless truncate is set."""
        if isinstance(texts, str):
            texts = [texts]
        return tokenize_checked(self.tokenizer, self.context_length, list(texts), truncate)

    @torch.no_grad()
    def encode_text(
        self, texts: list[str], batch_size: int = 256, truncate: bool = False, fast: bool = True
    ) -> torch.Tensor:
        """Normalised fp32 text embeddings [N, D], in input order."""
        tokens = self.tokenize(texts, truncate)
        if tokens.shape[0] == 0:
            return torch.empty(0, self.embed_dim)
        text = self._text if fast else None
        tower = self._tower  # set exactly when self._text is
        positions = (
            pool_positions(tokens, tower.pool_type, tower.eos_id) if text is not None and tower is not None else None
        )

        def encode_batch(idx: torch.Tensor) -> torch.Tensor:
            batch = tokens[idx].to(self.device)
            with self.autocast():
                if text is None or positions is None:
                    return self.model.encode_text(batch)
                return encode_truncated(text, batch, positions[idx].to(self.device))

        return encode_bucketed(tokens, positions, batch_size, encode_batch).cpu()

    def resize(self, images: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] or [3,H,W] in [0,1], any size -> [B,3,S,S] at the model's input size (bicubic, antialiased)."""
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if images.dim() != 4 or images.shape[1] != 3:
            raise UsageError(f"images must be [B,3,H,W], got {tuple(images.shape)}")
        images = images.to(self.device, torch.float32)
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(
                images, size=(self.image_size, self.image_size), mode="bicubic", antialias=True, align_corners=False
            )
        return images

    def prepare(self, image: Any) -> torch.Tensor:
        """One image -> [1,3,S,S] in [0,1] on the device, ready for encode_image. A photo (a path, or
        a PIL image as `load_photo` reads it) goes through the model's own preprocessing (open_clip's
        transform for its preprocess_cfg, or the processor's); a tensor in [0,1] (an image the
        probes made) is resized as it is (`resize`)."""
        if isinstance(image, torch.Tensor):
            return self.resize(image)
        if isinstance(image, (str, os.PathLike)):
            from probe.files.images import load_photo

            image = load_photo(Path(image))
        return self.resize(self.image_transform(image.convert("RGB")))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """Resize to the model's input and normalise with its own mean/std (never hard-coded OpenAI constants)."""
        return (self.resize(images) - self.mean) / self.std

    @property
    def fast_image(self) -> bool:
        """Whether encode_image runs the tower's inference form (folded BatchNorm etc., image_encoding)."""
        return self._image_tower is not None

    @functools.cached_property
    def _image_tower(self) -> torch.nn.Module | None:
        """Built on first use: text-only commands never pay for it."""
        return fast_image_tower(self.model.visual, self.image_size, self.device, self.precision)

    def encode_image(self, images: torch.Tensor, grad: bool = False, fast: bool = True) -> torch.Tensor:
        """Normalised image embeddings [B, D]; grad=True keeps the graph back to the pixels (inversion).
        fast=False runs the stock tower (the fast form agrees to float rounding)."""
        tower = self._image_tower if fast else None
        with torch.set_grad_enabled(grad), self.autocast():
            pixels = self.preprocess(images)
            feats = self.model.encode_image(pixels) if tower is None else tower(pixels)
        if not grad and not torch.isfinite(feats).all():  # inversion handles its own NaNs, image by image
            raise ModelError(
                f"{self.name}: its image embeddings are not finite (NaN or inf)",
                hint="its weights are damaged: check or re-download the checkpoint",
            )
        return F.normalize(feats.float(), dim=-1)

    @property
    def embed_dim(self) -> int:
        """The size of the embedding space both towers map into."""
        proj = getattr(self.model.visual, "output_dim", None)
        return int(proj) if proj else int(self.encode_text(["a"]).shape[1])

    def describe(self) -> dict:
        """What sidecars and manifests record about the model."""
        return {
            "model": self.spec.text,
            "fingerprint": self.fingerprint,
            "device": str(self.device),
            "precision": self.precision,
            "image_size": self.image_size,
            "context_length": self.context_length,
            "fast_text": self.fast_text,  # False: the tower's stock forward (not causal, or pooling that sees padding)
        }
