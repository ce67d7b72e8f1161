"""`probe.invert(...)`: inversion for scripts and notebooks, on the library the command uses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Inversions:
    """One Inversion per (prompt, seed), prompt-major; Jupyter shows them as an image grid."""

    items: list[Any]
    model: dict
    settings: dict = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]

    @property
    def images(self) -> list[Any]:
        """The images, [3,H,W] tensors in [0, 1]."""
        return [inv.image for inv in self.items]

    def save(self, folder: Path | str) -> list[Path]:
        """Write each image as `FOLDER/<prompt>/seed-N.png` (atomically); returns the paths."""
        from probe.plugin import safe_name, write_png

        paths = []
        for inv in self.items:
            path = Path(folder) / safe_name(inv.prompt) / f"seed-{inv.seed}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            paths.append(
                write_png(
                    path,
                    inv.image,
                    {
                        "prompt": inv.prompt,
                        "seed": inv.seed,
                        "cosine": inv.cosine,
                        "model": self.model.get("model", ""),
                    },
                )
            )
        return paths

    def _repr_html_(self) -> str:
        from probe.plugin import html_image_grid

        captions = [f"{inv.prompt} · seed {inv.seed} · cos {inv.cosine:.3f}" for inv in self.items]
        return html_image_grid(self.images, captions)


def invert(
    session: Any,
    prompts: str | Sequence[str],
    seeds: Sequence[int] = (0,),
    preset: str = "default",
    *,
    transforms: Sequence[Any] | None = None,
    param: Any = None,
    priors: Mapping[str, Any] | Sequence[Any] | None = None,
    **settings: Any,
) -> Inversions:
    """Optimise one image per (prompt, seed) that the model matches to the prompt.

    `preset` is `default` (fast) or `paper` (the authors' recipe) or a YAML file; keyword arguments
    override its settings (e.g. steps=30). Parts may be data or objects, as lucent's `render_vis`:
    `transforms=["jitter", {"affine": {"degrees": 20}}, Resize(64)]` (any callable `t(views, rng)`),
    `param="fft"` or an initialiser `init(rng, size) -> Param`, `priors={"tv": 0.03}` or
    `{"mine": callable}` / `[0.03 * TotalVariation()]`. Prompts may blend: "a panda | a mad scientist:0.5".
    """
    from probe_invert.render import invert_items
    from probe_invert.settings import load_preset

    prompts = [prompts] if isinstance(prompts, str) else list(prompts)
    parts = {"transforms": transforms, "param": param, "priors": priors}
    chosen = load_preset(preset, **settings, **{k: v for k, v in parts.items() if v is not None})
    found = invert_items(session, [(p, int(s)) for p in prompts for s in seeds], chosen)
    return Inversions(found, session.describe(), chosen.to_dict())
