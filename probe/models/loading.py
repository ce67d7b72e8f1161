"""Turn a ModelSpec into a frozen open_clip model, its tokenizer and a stable fingerprint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import open_clip
import torch

from probe.errors import ModelError
from probe.files.cache import file_sha256
from probe.models.fingerprints import builtin_weights_digest, fingerprint_id, local_dir_raw
from probe.models.hub import hub_mode, network_available
from probe.models.preprocess import ImageTransform, checked_stats, open_clip_transform
from probe.models.specs import BUILTIN_MODELS, ModelSpec, builtin_file, check_weights_file

RANDOM_INIT_SEED = 0


@dataclass
class LoadedModel:
    """What a session needs from a model: the module, its tokenizer, preprocessing and identity."""

    model: torch.nn.Module
    tokenizer: Any
    image_size: int
    mean: tuple[float, ...]  # one per channel (three)
    std: tuple[float, ...]
    fingerprint: str = ""  # must change when the weights change; "" = hashed from the state dict
    # the model's own preprocessing of a photo (PIL RGB -> [3,H,W] in [0,1], not normalised);
    # None: the largest centred square, resized to image_size as the probes' own tensors are
    image_transform: ImageTransform | None = None


def _plugin_model(spec: ModelSpec, allow_pickle: bool) -> LoadedModel:
    """A model from the loader a plugin registered for the spec's prefix. A loader that gives no
    fingerprint gets one hashed from the loaded state dict, so caches keyed by it follow the weights."""
    from probe.registry import model_loaders
    from probe.registry.checks import PluginError

    ext = model_loaders().require(spec.arch, need=spec.text)
    loaded = ext.load(spec.weights or "", allow_pickle=allow_pickle)
    if not isinstance(loaded, LoadedModel):
        raise PluginError(
            ext.plugin, ext.hook, ext.name, f"returned {type(loaded).__name__}, not a LoadedModel", ext.builtin
        )
    if not isinstance(loaded.fingerprint, str):
        raise PluginError(ext.plugin, ext.hook, ext.name, "gave a fingerprint that is not a str", ext.builtin)
    if not loaded.fingerprint:
        loaded.fingerprint = fingerprint_id(spec.text, state_dict_digest(loaded.model))
    loaded.model.eval().requires_grad_(False)
    return loaded


def state_dict_digest(model: torch.nn.Module) -> str:
    """sha256 over a module's state dict (names, dtypes, shapes and bytes), in name order."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _register_builtin_configs() -> None:
    """Make the packaged configs visible to open_clip's factory (idempotent)."""
    missing = [n for n in BUILTIN_MODELS if n not in open_clip.list_models()]
    if missing:
        with resources.as_file(resources.files("probe.models").joinpath("configs")) as folder:
            open_clip.add_model_config(Path(folder))


def _create(arch: str, **kwargs: Any) -> torch.nn.Module:
    """open_clip's factory with random init made deterministic, so @random and fingerprints agree.
    Without a checkpoint, Hugging Face text towers stay random too (no base-weight download)."""
    kwargs.setdefault("pretrained", None)
    kwargs.setdefault("pretrained_text", False)
    logging.disable(logging.WARNING)  # open_clip warns "initialized randomly" and about QuickGELU tags
    try:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            torch.manual_seed(RANDOM_INIT_SEED)
            return open_clip.create_model(arch, **kwargs)
    finally:
        logging.disable(logging.NOTSET)


HF_EXTRA_HINT = (
    "install the Hugging Face extra (in the clip-probe folder: pip install -e '.[hf]': transformers, sentencepiece); "
    "offline, also cache the text tower's config and tokenizer files (docs/models.md: 'Bringing your own weights')"
)


def missing_extra(exc: BaseException | None) -> ModelError | None:
    """A ModelError naming the install command when `exc` (or its cause) is a missing transformers /
    sentencepiece / tokenizers package, which SigLIP and Hugging Face text towers need; else None."""
    while exc is not None:
        name = getattr(exc, "name", None) or ""
        text = str(exc)
        if isinstance(exc, ImportError) and name.split(".")[0] in ("transformers", "sentencepiece", "tokenizers"):
            return ModelError(f"this model needs the Python package {name.split('.')[0]!r}", hint=HF_EXTRA_HINT)
        if "pip install transformers" in text or "install sentencepiece" in text.lower():
            return ModelError("this model needs the Python package 'transformers'", hint=HF_EXTRA_HINT)
        exc = exc.__cause__ or exc.__context__
    return None


def _recorded_quick_gelu(arch: str, path: Path) -> bool:
    """Whether to build ARCH with QuickGELU for a safetensors file that records its source's
    activation (`probe models convert` writes it): True where the file says quick_gelu and ARCH's
    config does not; a file recorded as GELU under a QuickGELU architecture is refused."""
    if path.suffix != ".safetensors":
        return False
    from safetensors import safe_open

    from probe.models.convert import ACTIVATION_KEY

    try:
        with safe_open(str(path), framework="pt") as f:
            recorded = (f.metadata() or {}).get(ACTIVATION_KEY)
    except Exception as exc:  # not a safetensors file: reported in one line
        raise ModelError(f"cannot read weights file {path}: {exc}", hint="is it a complete weights file?") from exc
    arch_quick = bool((open_clip.get_model_config(arch) or {}).get("quick_gelu", False))
    if recorded == "gelu" and arch_quick:
        plain = arch.removesuffix("-quickgelu")
        raise ModelError(
            f"{path} was converted from a checkpoint with GELU activations, but {arch} uses QuickGELU",
            hint=f"load it as -m {plain}@{path}" if plain != arch else "use the architecture without QuickGELU",
        )
    return recorded == "quick_gelu" and not arch_quick


def _load_state_file(model: torch.nn.Module, path: Path, allow_pickle: bool) -> None:
    """open_clip's own `load_checkpoint` (key renames, position-embedding resizing, logit shapes),
    with the file checked first and its failures as one-line errors."""
    check_weights_file(path, allow_pickle)
    try:
        open_clip.load_checkpoint(model, str(path), weights_only=not allow_pickle)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise ModelError(
            f"weights in {path} do not fit this architecture: {first}", hint="check ARCH before '@'"
        ) from exc
    except Exception as exc:  # safetensors and torch.load raise their own error types for corrupt files
        raise ModelError(f"cannot read weights file {path}: {exc}", hint="is it a complete weights file?") from exc


def _config_hash(arch: str) -> str:
    cfg = open_clip.get_model_config(arch) or {}
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def _offline_error(spec: ModelSpec) -> ModelError:
    local = (
        "a local-dir: folder" if spec.kind == "hf-hub" else f"a local file with {spec.arch}@/path/weights.safetensors"
    )
    return ModelError(
        f"pretrained weights for {spec.text} are not cached and cannot be downloaded (no network)",
        hint=f"download them on a connected machine into the open_clip/Hugging Face cache, pass {local}, "
        "or use the built-in model shapes-tiny",
    )


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def _fetch(spec: ModelSpec, fn: Callable[[], Any], online: bool) -> Any:
    """Call a download-capable function: from the cache when offline, with a clear error."""
    with hub_mode(online):
        try:
            return fn()
        except Exception as exc:  # network and cache failures surface as many exception types
            extra = missing_extra(exc)
            if extra is not None:
                raise extra from exc
            if not online:
                raise _offline_error(spec) from exc
            raise ModelError(
                f"cannot download weights for {spec.text}: {type(exc).__name__}: {_first_line(exc)}"
            ) from exc


def _open_clip_model(spec: ModelSpec, online: bool, **kwargs: Any) -> torch.nn.Module:
    """open_clip's own factory (checkpoint conversions, tag preprocessing, custom text towers), run
    cache-only when offline, with its failures as one-line errors."""
    with hub_mode(online):
        try:
            return _create(spec.arch, **kwargs)
        except Exception as exc:  # open_clip wraps most failures in RuntimeError
            extra = missing_extra(exc)
            if extra is not None:
                raise extra from exc
            first = _first_line(exc)
            if isinstance(exc, AssertionError) or any(
                k in str(exc) for k in ("size mismatch", "Missing key", "Unexpected key")
            ):
                raise ModelError(
                    f"weights for {spec.text} do not fit this architecture: {first}", hint="check ARCH before '@'"
                ) from exc
            hint = (
                None
                if online
                else (
                    "offline: the model's text tower config and tokenizer files must be in the "
                    "Hugging Face cache too (docs/models.md: 'Bringing your own weights')"
                )
            )
            raise ModelError(f"cannot load {spec.text}: {type(exc).__name__}: {first}", hint=hint) from exc


def _build(
    spec: ModelSpec, allow_pickle: bool, cache_dir: str | None, online: bool
) -> tuple[torch.nn.Module, str, str]:
    """Returns (model, tokenizer name, fingerprint source). Every kind but the built-in one loads
    through open_clip's factory; identities come from the weights' content."""
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
        check_weights_file(path, allow_pickle)
        quick = _recorded_quick_gelu(spec.arch, path)
        try:
            model = _open_clip_model(
                spec, online=False, pretrained=str(path), weights_only=not allow_pickle, force_quick_gelu=quick
            )
        except ModelError as exc:
            if "do not fit" in str(exc) or missing_extra(exc.__cause__) is not None:
                raise
            raise ModelError(
                f"cannot read weights file {path}: {exc.__cause__}", hint="is it a complete weights file?"
            ) from exc
        forced = ":quick_gelu" if quick else ""
        return model, spec.arch, f"{spec.arch}:{_config_hash(spec.arch)[:16]}{forced}:{file_sha256(path)}"
    if spec.kind == "pretrained":
        cfg = open_clip.get_pretrained_cfg(spec.arch, spec.weights or "")
        path = _fetch(spec, lambda: open_clip.download_pretrained(cfg, cache_dir=cache_dir), online)
        quick_gelu = bool(
            cfg.get("quick_gelu", False)
        )  # open_clip only warns on a mismatch; the tag's setting is right
        model = _open_clip_model(
            spec, online, pretrained=spec.weights, force_quick_gelu=quick_gelu, cache_dir=cache_dir
        )
        raw = f"{spec.arch}@{spec.weights}:{_config_hash(spec.arch)[:16]}:{quick_gelu}:{file_sha256(Path(path))}"
        return model, spec.arch, raw
    if spec.kind == "local-dir":
        raw = local_dir_raw(spec, allow_pickle)  # checks the folder's files before open_clip reads them
        model = _open_clip_model(spec, online, weights_only=not allow_pickle, pretrained_text=True)
        return model, spec.arch, raw
    # hf-hub: the repo's open_clip config and the weights file open_clip picks, both by content
    from open_clip.pretrained import download_pretrained_from_hf

    repo = spec.arch.removeprefix("hf-hub:")
    path = _fetch(spec, lambda: download_pretrained_from_hf(repo, cache_dir=cache_dir), online)
    config = _fetch(spec, lambda: _hf_file(repo, "open_clip_config.json", cache_dir), online)
    model = _open_clip_model(spec, online, cache_dir=cache_dir, pretrained_text=True)
    raw = f"{spec.arch}:{file_sha256(Path(config))[:16]}:{file_sha256(Path(path))}"
    return model, spec.arch, raw


def _hf_file(repo: str, filename: str, cache_dir: str | None) -> str:
    from huggingface_hub import hf_hub_download

    return hf_hub_download(repo_id=repo, filename=filename, cache_dir=cache_dir)


def _tokenizer(spec: ModelSpec, name: str, online: bool) -> Any:
    """open_clip's tokenizer for the model (Hugging Face ones come from the cache when offline)."""
    with hub_mode(online):
        try:
            return open_clip.get_tokenizer(name)
        except Exception as exc:
            extra = missing_extra(exc)
            if extra is not None:
                raise extra from exc
            raise ModelError(
                f"cannot build the tokenizer of {spec.text}: {type(exc).__name__}: {_first_line(exc)}",
                hint="offline, the tokenizer files must be in the Hugging Face cache",
            ) from exc


def tokenizer_only(spec: ModelSpec) -> Any | None:
    """The model's tokenizer without its weights, for checking prompt lengths before a model loads;
    None where that is not possible offline (the session checks again when it encodes)."""
    if spec.kind == "plugin":
        return None
    try:
        if spec.kind == "builtin":
            _register_builtin_configs()
        with hub_mode(False):  # a pre-flight check never downloads
            return open_clip.get_tokenizer(spec.arch)
    except Exception:  # any failure here is reported, better worded, by the model load itself
        return None


def load_model(spec: ModelSpec, allow_pickle: bool = False, cache_dir: str | None = None) -> LoadedModel:
    """Build, freeze and describe the model; moves nothing to a device (the session does)."""
    if spec.kind == "plugin":
        return _plugin_model(spec, allow_pickle)
    if spec.kind == "hf-hub" or spec.kind == "pretrained":
        os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    online = spec.kind in ("pretrained", "hf-hub", "local-dir") and network_available()
    model, tok_name, fingerprint = _build(spec, allow_pickle, cache_dir, online)
    model.eval().requires_grad_(False)
    tokenizer = _tokenizer(spec, tok_name, online)
    pre = open_clip.get_model_preprocess_cfg(model)
    size = pre.get("size", 224)
    try:
        size = int(size[0] if isinstance(size, (tuple, list)) else size)
    except (TypeError, ValueError, IndexError) as exc:
        raise ModelError(f"{spec.text}: its preprocess size is not an integer: {size!r}") from exc
    mean = checked_stats(pre.get("mean", open_clip.OPENAI_DATASET_MEAN), "mean", spec.text)
    std = checked_stats(pre.get("std", open_clip.OPENAI_DATASET_STD), "std", spec.text)
    # the built-in model saw square renders only: its photos keep the centred-square tensor path
    transform = None if spec.arch in BUILTIN_MODELS else open_clip_transform(pre, spec.text)
    return LoadedModel(model, tokenizer, size, mean, std, fingerprint_id(spec.arch, fingerprint), transform)
