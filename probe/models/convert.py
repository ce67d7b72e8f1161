"""Convert a pickle checkpoint (.pt/.pth/.bin/.ckpt) to safetensors once, so later loads never unpickle.

The pickle is read only when the caller allows it (pickle files can run code); the result holds every
tensor of the state dict (a `state_dict` entry, a `module.` prefix and TorchScript archives are
unwrapped as open_clip does) and gets a `.sha256` file beside it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from probe.errors import DataError, ModelError, UsageError
from probe.files.atomic import atomic_write_text, default_mode
from probe.files.cache import hash_file
from probe.models.specs import PICKLE_SUFFIXES


def _read_pickle(path: Path) -> dict[str, torch.Tensor]:
    """The state dict of a pickle checkpoint or TorchScript archive, tensors only, read by open_clip's
    own reader (so OpenAI's archives lose the same non-weight entries as when open_clip loads them)."""
    from open_clip.factory import load_state_dict

    try:
        obj = load_state_dict(str(path), weights_only=False)
    except AttributeError:  # a pickled nn.Module, which open_clip's reader does not unwrap
        obj = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt or foreign pickles raise many error types
        raise DataError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    tensors = {str(k).removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise DataError(f"{path} holds no tensors")
    return tensors


def convert_checkpoint(src: Path, dst: Path, allow_pickle: bool, force: bool = False) -> tuple[Path, str]:
    """Write `src`'s tensors to `dst` (.safetensors) and `dst`.sha256; returns (dst, sha256 hex).
    Refuses to overwrite unless `force`; the file appears complete or not at all."""
    from safetensors.torch import save_file

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not src.is_file():
        raise UsageError(f"checkpoint not found: {src}")
    if src.suffix not in PICKLE_SUFFIXES:
        raise UsageError(
            f"{src} is not a pickle checkpoint ({', '.join(PICKLE_SUFFIXES)})",
            hint="safetensors files need no conversion",
        )
    if dst.suffix != ".safetensors":
        raise UsageError(f"the output must end in .safetensors, got {dst.name}")
    for path in (dst, dst.with_name(dst.name + ".sha256")):  # the checksum beside it is an output too
        if path.exists() and not force:
            raise UsageError(f"{path} already exists", hint="pick another name, or pass --force to replace it")
    if not allow_pickle:
        raise ModelError(
            f"refusing to read pickle checkpoint {src}: pickle files can run code",
            hint="pass --allow-pickle if you trust where it came from",
        )
    tensors = {k: v.detach().contiguous().clone() for k, v in _read_pickle(src).items()}  # no shared storage
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"format": "pt", "converted_from": src.name})
        digest = hash_file(tmp)
        os.chmod(tmp, default_mode())  # safetensors writes 0600; a converted checkpoint is shared like any output
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    atomic_write_text(dst.with_name(dst.name + ".sha256"), f"{digest}  {dst.name}\n")
    return dst, digest
