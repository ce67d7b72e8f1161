"""Model fingerprints worked out from a spec and its files alone, before any model code is imported.

`probe.models.loading` stamps every loaded model with these, and text snapshots (`probe.encoding.snapshot`)
find themselves by them without loading the model, so the two can never disagree.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

from probe.errors import ModelError
from probe.files.cache import file_sha256
from probe.models.specs import PICKLE_SUFFIXES, ModelSpec, builtin_file


def fingerprint_id(arch: str, raw: str) -> str:
    """The short fingerprint sessions report: the architecture's last name part + 16 hex digits."""
    return f"{arch.split(':')[-1].split('/')[-1]}-{hashlib.sha256(raw.encode()).hexdigest()[:16]}"


def builtin_weights_digest(spec: ModelSpec) -> str:
    """sha256 of a built-in model's packaged weights, checked against the shipped sum."""
    with resources.as_file(builtin_file(spec.arch, "weights")) as weights:
        if not Path(weights).is_file():
            raise ModelError(
                f"the built-in model {spec.arch} has no weights file in this install",
                hint="reinstall clip-probe, or train it with `probe world train`",
            )
        digest = file_sha256(Path(weights))
    expected = builtin_file(spec.arch, "sha256").read_text().split()[0]
    if digest != expected:
        raise ModelError(
            f"the built-in weights of {spec.arch} are corrupt (sha256 mismatch)", hint="reinstall clip-probe"
        )
    return digest


def local_dir_files(spec: ModelSpec, allow_pickle: bool) -> tuple[Path, list[Path]]:
    """(config, every weights file) of a local-dir: spec, with clear errors. All weights files count
    towards the identity: which one open_clip loads is its own rule, and a stale fingerprint would
    let caches and text snapshots answer for other weights."""
    from probe.files.checks import check_regular_file

    folder = Path(spec.arch.removeprefix("local-dir:"))  # "~" already expanded by parse_model_spec
    config = folder / "open_clip_config.json"
    check_regular_file(config, "the model config", ModelError)
    if not config.is_file():
        raise ModelError(
            f"no open_clip_config.json in {folder}", hint="a local-dir: folder needs its config and weights"
        )
    weights = [p for p in sorted(folder.iterdir()) if p.suffix in (".safetensors", *PICKLE_SUFFIXES)]
    if not weights:
        raise ModelError(f"no weights file in {folder}", hint="add open_clip_model.safetensors")
    for path in weights:
        check_regular_file(path, "the weights file", ModelError)
    safe = [p for p in weights if p.suffix == ".safetensors"]
    if not safe and not allow_pickle:
        raise ModelError(
            f"only pickle weights in {folder}", hint="convert them to .safetensors, or pass --allow-pickle"
        )
    return config, weights


def local_dir_raw(spec: ModelSpec, allow_pickle: bool) -> str:
    """config hash + the main weights file's sha256 (safetensors first), in the original form so
    fingerprints written by earlier versions stay valid; any other weights files in the folder are appended."""
    config, weights = local_dir_files(spec, allow_pickle)
    main = ([p for p in weights if p.suffix == ".safetensors"] or weights)[0]
    raw = f"{spec.arch}:{hashlib.sha256(config.read_bytes()).hexdigest()[:16]}:{file_sha256(main)}"
    others = [p for p in weights if p != main]
    return raw + ("|" + ",".join(f"{p.name}={file_sha256(p)}" for p in others) if others else "")


def fingerprint_without_loading(spec: ModelSpec, allow_pickle: bool = False) -> str | None:
    """The session fingerprint of a built-in or local-dir model from its files; None for kinds whose
    identity needs open_clip (random configs, tags, files named with an open_clip architecture)."""
    if spec.kind == "builtin":
        return fingerprint_id(spec.arch, f"{spec.arch}:{builtin_weights_digest(spec)}")
    if spec.kind == "local-dir":
        return fingerprint_id(spec.arch, local_dir_raw(spec, allow_pickle))
    return None
