"""Convert a pickle checkpoint (.pt/.pth/.bin/.ckpt) to safetensors once, so later loads never unpickle.

The pickle is read only when the caller allows it (pickle files can run code); the result holds every
tensor of the state dict (a `state_dict` entry, a `module.` prefix and TorchScript archives are
unwrapped as open_clip does) and gets a `.sha256` file beside it.
"""

from __future__ import annotations

import errno
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from probe.errors import DataError, ModelError, UsageError
from probe.files.atomic import atomic_write_text, check_writable, default_mode, write_error
from probe.files.cache import hash_file
from probe.files.checks import check_regular_file, utf8_text
from probe.models.specs import PICKLE_SUFFIXES

ACTIVATION_KEY = "activation"
"""safetensors metadata key: the text and image towers' activation in the source checkpoint
(`quick_gelu` or `gelu`), written where the source shows it; loading `ARCH@file` honours it."""

_SCRIPT_CONSTANTS = ("input_resolution", "context_length", "vocab_size")  # OpenAI archives' non-weights


def source_activation(obj: object) -> str | None:
    """`quick_gelu` or `gelu` when the checkpoint holds modules (a TorchScript archive such as
    OpenAI's, or a pickled model) whose MLPs use that activation; None for a bare state dict."""
    if not isinstance(obj, torch.nn.Module):
        return None
    names = {str(getattr(m, "original_name", type(m).__name__)) for m in obj.modules()}
    if "QuickGELU" in names:
        return "quick_gelu"
    return "gelu" if "GELU" in names else None


def _read_pickle(path: Path) -> tuple[dict[str, torch.Tensor], str | None]:
    """The state dict of a pickle checkpoint or TorchScript archive (tensors only, unwrapped as
    open_clip's own reader does: OpenAI's archives lose the same non-weight entries), and the
    activation its modules use where it holds modules."""
    try:
        with warnings.catch_warnings():  # torch.jit.load's deprecation notice is not the user's concern
            warnings.simplefilter("ignore", FutureWarning)
            obj = torch.load(str(path), map_location="cpu", weights_only=False)  # an archive: torch.jit.load
    except Exception as exc:  # corrupt or foreign pickles raise many error types
        raise DataError(f"cannot read checkpoint {path}: {type(exc).__name__}: {exc}") from exc
    activation = source_activation(obj)
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    elif isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
        for key in _SCRIPT_CONSTANTS if isinstance(obj, dict) else ():
            obj.pop(key, None)
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, not a state dict of tensors")
    tensors = {str(k).removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise DataError(f"{path} holds no tensors")
    return tensors, activation


@dataclass(frozen=True)
class Converted:
    """A converted checkpoint: where it is, its sha256, and the source's activation (None: not shown)."""

    path: Path
    sha256: str
    activation: str | None


def convert_checkpoint(src: Path, dst: Path, allow_pickle: bool, force: bool = False) -> Converted:
    """Write `src`'s tensors to `dst` (.safetensors, with the source's activation in its metadata)
    and `dst`.sha256. Refuses to overwrite unless `force`; the file appears complete or not at all."""
    from safetensors.torch import save_file

    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    for name in (src, dst):
        if not utf8_text(str(name)):
            raise UsageError(f"{str(name)!r} is not a UTF-8 file name", hint="rename it (or pick a name) in UTF-8")
    check_regular_file(src, "checkpoint", UsageError)
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
        if path.is_dir():
            raise UsageError(f"{path} is a folder", hint="name the output .safetensors file, e.g. model.safetensors")
        if path.exists() and not force:
            raise UsageError(f"{path} already exists", hint="pick another name, or pass --force to replace it")
    if not allow_pickle:
        raise ModelError(
            f"refusing to read pickle checkpoint {src}: pickle files can run code",
            hint="pass --allow-pickle if you trust where it came from",
        )
    check_writable(dst.parent)  # a read-only or missing folder fails before the pickle is read
    state, activation = _read_pickle(src)
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}  # no shared storage
    metadata = {"format": "pt", "converted_from": src.name}
    if activation is not None:
        metadata[ACTIVATION_KEY] = activation
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        digest = hash_file(tmp)
        os.chmod(tmp, default_mode())  # safetensors writes 0600; a converted checkpoint is shared like any output
        os.replace(tmp, dst)
    except Exception as exc:  # a full disk (safetensors' own error type) or any OSError: nothing is left
        if not isinstance(exc, OSError):
            full = "No space left" in str(exc)
            exc = OSError(errno.ENOSPC if full else errno.EIO, os.strerror(errno.ENOSPC) if full else str(exc))
        raise write_error(dst, exc) from exc
    finally:
        tmp.unlink(missing_ok=True)
    try:
        atomic_write_text(dst.with_name(dst.name + ".sha256"), f"{digest}  {dst.name}\n")
    except Exception:
        dst.unlink(missing_ok=True)  # a checkpoint without its sum is not left behind
        raise
    return Converted(dst, digest, activation)
