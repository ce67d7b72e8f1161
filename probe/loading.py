"""Turn a ModelSpec into a frozen open_clip model, its tokenizer and a stable fingerprint."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

import open_clip
import torch
from open_clip.model import set_model_preprocess_cfg

from probe.cache import file_sha256
from probe.errors import ModelError
from probe.fingerprints import builtin_weights_digest, fingerprint_id, local_dir_raw
from probe.models import BUILTIN_MODELS, PICKLE_SUFFIXES, ModelSpec, builtin_file

RANDOM_INIT_SEED = 0


@dataclass
class LoadedModel:
    """What a session needs from a model: the module, its tokenizer, preprocessing and identity."""

    model: torch.nn.Module
    tokenizer: Any
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    fingerprint: str


def _plugin_model(spec: ModelSpec, allow_pickle: bool) -> LoadedModel:
    """A model from the loader a plugin registered for the spec's prefix."""
    from probe.registry import current

    ext = current().get("register_model_loaders", spec.arch, need=spec.text)
    loaded = ext.value(spec.weights or "", allow_pickle=allow_pickle)
    if not isinstance(loaded, LoadedModel):
        raise ModelError(f"the model loader of plugin {ext.plugin!r} for {spec.arch!r} returned {type(loaded).__name__}, "
                         "not a LoadedModel", hint="report this to the plugin's authors")
    loaded.model.eval().requires_grad_(False)
    return loaded


def _register_builtin_configs() -> None:
    """Make the packaged configs visible to open_clip's factory (idempotent)."""
    missing = [n for n in BUILTIN_MODELS if n not in open_clip.list_models()]
    if missing:
        with resources.as_file(resources.files("probe").joinpath("model_configs")) as folder:
            open_clip.add_model_config(Path(folder))


def _create(arch: str, **kwargs: Any) -> torch.nn.Module:
    """open_clip's factory with random init made deterministic, so @random and fingerprints agree."""
    logging.disable(logging.WARNING)  # open_clip warns "initialized randomly" before we load weights
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(RANDOM_INIT_SEED)
            return open_clip.create_model(arch, pretrained=None, **kwargs)
    finally:
        logging.disable(logging.NOTSET)


def _load_state_file(model: torch.nn.Module, path: Path, allow_pickle: bool) -> None:
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}", hint="check the path after '@'")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            state = load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise ModelError(f"cannot read weights file {path}: {exc}", hint="is it a complete safetensors file?") from exc
    elif path.suffix in PICKLE_SUFFIXES:
        if not allow_pickle:
            raise ModelError(
                f"refusing to load pickle checkpoint {path}: pickle files can run code",
                hint="convert it to .safetensors, or pass --allow-pickle if you trust it",
            )
        state = torch.load(str(path), map_location="cpu", weights_only=False)
        state = state.get("state_dict", state)
        state = {k.removeprefix("module."): v for k, v in state.items()}
    else:
        raise ModelError(f"unknown weights format {path.suffix!r} for {path}", hint="use a .safetensors file")
    try:
        model.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(f"weights in {path} do not fit this architecture: {first}", hint="check ARCH before '@'") from exc


def _config_hash(arch: str) -> str:
    cfg = open_clip.get_model_config(arch) or {}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def _offline_error(spec: ModelSpec) -> ModelError:
    local = "a local-dir: folder" if spec.kind == "hf-hub" else f"a local file with {spec.arch}@/path/weights.safetensors"
    return ModelError(
        f"pretrained weights for {spec.text} are not cached and cannot be downloaded (no network)",
        hint=f"download them on a connected machine into the open_clip/Hugging Face cache, pass {local}, "
        "or use the built-in model shapes-tiny",
    )


def _network_available(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A quick reachability check, so an offline machine fails at once instead of after minutes of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _hub_mode(online: bool) -> Iterator[None]:
    """Run hub look-ups cache-only when offline (huggingface_hub reads this flag at call time)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = old or not online
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def _fetch(spec: ModelSpec, fn: Callable[[], Any]) -> Any:
    """Call a download-capable open_clip function: from the cache when offline, with a clear error."""
    online = _network_available()
    with _hub_mode(online):
        try:
            return fn()
        except Exception as exc:  # network and cache failures surface as many exception types
            if not online:
                raise _offline_error(spec) from exc
            raise ModelError(f"cannot download weights for {spec.text}: {type(exc).__name__}: {exc}") from exc


def _build(spec: ModelSpec, allow_pickle: bool, cache_dir: str | None) -> tuple[torch.nn.Module, str, str]:
    """Returns (model, tokenizer name, fingerprint)."""
    if spec.kind == "builtin":
        _register_builtin_configs()
        model = _create(spec.arch)
        digest = builtin_weights_digest(spec)
        with resources.as_file(builtin_file(spec.arch, "weights")) as weights:
            _load_state_file(model, Path(weights), allow_pickle=False)
        return model, spec.arch, f"{spec.arch}:{digest}"
    if spec.kind == "random":
        _register_builtin_configs()
        return _create(spec.arch), spec.arch, f"{spec.arch}@random:{RANDOM_INIT_SEED}:{_config_hash(spec.arch)}"
    if spec.kind == "file":
        _register_builtin_configs()
        path = Path(spec.weights or "").expanduser()
        model = _create(spec.arch)
        _load_state_file(model, path, allow_pickle)
        return model, spec.arch, f"{spec.arch}:{file_sha256(path)}"
    if spec.kind == "pretrained":
        cfg = open_clip.get_pretrained_cfg(spec.arch, spec.weights or "")
        path = _fetch(spec, lambda: open_clip.download_pretrained(cfg, cache_dir=cache_dir))
        model = _create(spec.arch, force_quick_gelu=bool(cfg.get("quick_gelu", False)))
        _load_state_file(model, Path(path), allow_pickle=True)  # open_clip's own published files
        pre = open_clip.get_model_preprocess_cfg(model)
        pre.update({k: cfg[k] for k in ("mean", "std", "size", "interpolation", "resize_mode") if k in cfg})
        set_model_preprocess_cfg(model, pre)  # the tag's own mean/std (not every tag uses OpenAI's)
        return model, spec.arch, f"{spec.arch}@{spec.weights}"
    if spec.kind == "local-dir":
        raw = local_dir_raw(spec, allow_pickle)  # checks the folder's files before open_clip reads them
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(RANDOM_INIT_SEED)
                model = open_clip.create_model(spec.arch, weights_only=not allow_pickle)
        except Exception as exc:
            raise ModelError(f"cannot load {spec.arch}: {exc}", hint="check the folder's config and weights") from exc
        return model, spec.arch, raw
    # hf-hub
    model = _fetch(spec, lambda: open_clip.create_model(spec.arch))
    return model, spec.arch, spec.arch


def load_model(spec: ModelSpec, allow_pickle: bool = False, cache_dir: str | None = None) -> LoadedModel:
    """Build, freeze and describe the model; moves nothing to a device (the session does)."""
    if spec.kind == "plugin":
        return _plugin_model(spec, allow_pickle)
    if spec.kind == "hf-hub" or spec.kind == "pretrained":
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    model, tok_name, fingerprint = _build(spec, allow_pickle, cache_dir)
    model.eval().requires_grad_(False)
    try:
        tokenizer = open_clip.get_tokenizer(tok_name)
    except Exception as exc:
        raise ModelError(f"cannot build the tokenizer of {spec.text}: {exc}") from exc
    pre = open_clip.get_model_preprocess_cfg(model)
    size = pre.get("size", 224)
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = tuple(float(v) for v in pre.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(float(v) for v in pre.get("std", open_clip.OPENAI_DATASET_STD))
    return LoadedModel(model, tokenizer, size, mean, std, fingerprint_id(spec.arch, fingerprint))
