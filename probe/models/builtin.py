"""The models that ship inside the package, as data: no imports, so the registry can refuse a plugin
loader whose prefix would take one over without importing model code."""

from __future__ import annotations

DEFAULT_MODEL = "shapes-tiny"

#: Built-in models as data: name -> (config file, weights file, sha256 file), inside the package.
BUILTIN_MODELS: dict[str, dict[str, str]] = {
    "shapes-tiny": {
        "config": "configs/shapes-tiny.json",
        "weights": "weights/shapes-tiny.safetensors",
        "sha256": "weights/shapes-tiny.sha256",
        "about": "small CLIP trained on the procedural shapes world (ships with clip-probe)",
    },
}
