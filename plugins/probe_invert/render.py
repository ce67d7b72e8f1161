"""The render loop: the one place that owns the optimiser, resolution schedule, clipping, clamping,
snapshots, per-image NaN handling and stop requests.

All prompt x seed images are optimised together (in chunks of `settings.batch_size`), and each
image's B x copies augmented views go through one `encode_image` call per step (per model, for an
ensemble).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

import torch

from probe.plugin import Session, UsageError
from probe_invert.objectives import Context, Lambda, Objective, Sum, TextMatch
from probe_invert.param import Param, make_param, schedule_sizes
from probe_invert.prompts import parse_prompt
from probe_invert.randomness import ImageRandom
from probe_invert.settings import InvertSettings
from probe_invert.transforms import build_transforms

StepCallback = Callable[[int, torch.Tensor], None]
StopCheck = Callable[[], bool]
#: (steps done so far over all chunks, the chunk's (prompt, seed) items, their images [B,3,H,W] in [0,1]
#: on the CPU, their live cosine): what a live view shows while the images form.
PreviewCallback = Callable[[int, list[tuple[str, int]], torch.Tensor, torch.Tensor], None]


@dataclass
class Inversion:
    """One optimised image and how it went. `seconds` is its share of its chunk's wall time."""

    prompt: str
    seed: int
    image: torch.Tensor  # [3,H,W] in [0,1], CPU
    cosine: float  # weighted cosine of the final (unaugmented) image to the prompt
    seconds: float
    status: str  # "done" | "failed" (see `judge`) | "nan" | "interrupted"
    steps: int
    snapshots: list[torch.Tensor] = field(default_factory=list)
    message: str = ""
    snapshot_steps: list[int] = field(default_factory=list)
    model_cosines: list[float] = field(default_factory=list)  # per model of an ensemble (the session's first)
    start_cosine: float = float("nan")  # the same score for the random starting image


def text_targets(session: Session, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """(targets [N,K,D], weights [N,K]) for weighted prompts; each distinct text encoded once, on its
    own, so an image's target never depends on which other prompts share its run or batch."""
    parsed = [parse_prompt(p) for p in prompts]
    texts = list(dict.fromkeys(text for wp in parsed for text, _ in wp.parts))
    embeddings = torch.cat([session.encode_text([t]) for t in texts])
    index = {t: i for i, t in enumerate(texts)}
    k = max(len(wp.parts) for wp in parsed)
    targets = torch.zeros(len(parsed), k, embeddings.shape[1])
    weights = torch.zeros(len(parsed), k)
    for row, wp in enumerate(parsed):
        for col, (text, weight) in enumerate(wp.parts):
            targets[row, col] = embeddings[index[text]]
            weights[row, col] = weight
    return targets, weights


def build_objective(
    settings: InvertSettings,
    targets: Sequence[tuple[torch.Tensor, torch.Tensor]],
    extra: Objective | None = None,
    model_size: int = 0,
) -> tuple[list[TextMatch], Objective]:
    """(the text term of each model, the full loss): the models' mean text term + each prior times its
    weight (`priors`, each made from its own options) (+ extra). `targets` holds one (targets,
    weights) pair per model, the session's first."""
    matches = [TextMatch(t, w, settings.loss, model=m) for m, (t, w) in enumerate(targets)]
    total: Objective = matches[0] if len(matches) == 1 else Sum(list(matches)) * (1.0 / len(matches))
    for weight, prior in settings.build_priors(model_size):
        total = total + weight * _as_objective(prior)
    if extra is not None:
        total = total + extra
    return matches, total


def _as_objective(prior: Callable) -> Objective:
    """A plugin's prior (any callable ctx -> [B]) as an Objective that adds and scales."""
    return prior if isinstance(prior, Objective) else Lambda(prior)


#: An image whose every colour channel varies less than this across its pixels (on the 0-1 scale,
#: about 2 of 255 levels) is flat: one colour, nothing the prompt could be read from.
FLAT_STD = 0.008


def judge(image: torch.Tensor, cosine: float, start_cosine: float, floor: float) -> str:
    """Why a finished optimisation failed ("" when it did not): its final cosine is below the preset's
    floor (`min_cosine`), or no higher than the random starting image's (the optimiser made nothing
    the model matches better), or the image is flat (one colour: nothing to read the prompt from).
    The image is still saved, so the failure can be looked at, but it never counts as a result."""
    reasons = []
    if not math.isfinite(cosine):
        reasons.append("no finite cosine")
    else:
        if cosine < floor:
            reasons.append(f"cosine {cosine:.3f} below the floor {floor:g}")
        if math.isfinite(start_cosine) and cosine <= start_cosine:
            reasons.append(f"cosine {cosine:.3f} not above the start's {start_cosine:.3f}")
    spread = float(image.flatten(1).std(1).max()) if image[0].numel() > 1 else 0.0
    if spread < FLAT_STD:
        reasons.append(f"flat image (spread {spread * 255:.1f}/255)")
    return "; ".join(reasons)


def _learning_rate(settings: InvertSettings, step: int) -> float:
    if settings.lr_schedule == "cosine":
        return settings.lr * 0.5 * (1 + math.cos(math.pi * step / settings.steps))
    return settings.lr


@torch.no_grad()
def _clip_per_image(grads: list[torch.Tensor], max_norm: float, alive: torch.Tensor) -> None:
    """Clip each image's gradient norm to max_norm (as clip_grad_norm_ on one image); zero dead images."""
    squared = cast(torch.Tensor, sum(g.flatten(1).pow(2).sum(1) for g in grads))  # one grad per parameter: never empty
    coef = torch.ones_like(squared)
    if max_norm > 0:
        coef = (max_norm / (squared.sqrt() + 1e-6)).clamp(max=1.0)
    coef = torch.where(alive, coef, torch.zeros_like(coef))
    for g in grads:
        g.nan_to_num_(0.0, 0.0, 0.0).mul_(coef.view(-1, *([1] * (g.dim() - 1))))


def _encode_per_image(model: Session, views: torch.Tensor, rows: int, grad: bool = False) -> torch.Tensor:
    """Embeddings of `views` ([images * rows, ...]); on CPU one image's rows per `encode_image` call.

    CPU convolutions pick their blocking by batch size, so one call for the whole chunk would make an
    image's pixels depend on how many other images share its chunk; calls of one fixed shape keep it
    a function of its own seed (about 2x the step time of one call for a 16-image chunk). Other
    devices keep one call per chunk: their speed comes from large batches, and their kernels are not
    byte-reproducible across batch shapes in any case.
    """
    if model.device.type != "cpu":
        return model.encode_image(views, grad=grad)
    return torch.cat([model.encode_image(part, grad=grad) for part in views.split(rows)])


class _Chunk:
    """State of one chunk of images being optimised together."""

    def __init__(
        self,
        models: list[Session],
        items: list[tuple[str, int]],
        settings: InvertSettings,
        targets: list[tuple[torch.Tensor, torch.Tensor]],
        extra: Objective | None,
    ) -> None:
        session = models[0]
        self.session, self.models, self.items, self.settings = session, models, items, settings
        device = session.device
        self.rng = ImageRandom([seed for _, seed in items], settings.copies, device)
        start = settings.start_size(session.image_size)
        self.param: Param = make_param(settings, self.rng, start, session.image_size)
        self.transforms = build_transforms(settings, session.image_size)
        self.matches, self.objective = build_objective(
            settings, [(t.to(device), w.to(device)) for t, w in targets], extra, session.image_size
        )
        cap = settings.max_size or session.image_size
        self.sizes = schedule_sizes(start, settings.resize_steps(), max(cap, start))
        self.start_cosine = self._scores(self.param.images().detach())[0]
        self.optimizer = torch.optim.Adam(self.param.parameters(), lr=settings.lr)
        n = len(items)
        self.alive = torch.ones(n, dtype=torch.bool, device=device)
        self.status = ["done"] * n
        self.messages = [""] * n
        self.steps = [0] * n
        self.frozen: dict[int, torch.Tensor] = {}
        self.snapshots: list[list[torch.Tensor]] = [[] for _ in range(n)]
        self.snapshot_steps: list[int] = []

    def step(self, step: int) -> torch.Tensor:
        """One optimisation step; returns the per-image live cosine (mean over augmented copies)."""
        s = self.settings
        if step in self.sizes:
            self.param = self.param.resized(self.sizes[step])
            self.optimizer = torch.optim.Adam(self.param.parameters(), lr=s.lr)
        for group in self.optimizer.param_groups:
            group["lr"] = _learning_rate(s, step)
        images = self.param.images()
        views = self.transforms(images.repeat_interleave(s.copies, 0), self.rng)
        features = [_encode_per_image(model, views, s.copies, grad=True) for model in self.models]
        ctx = Context(images, features[0], s.copies, tuple(features[1:]))
        losses = self.objective(ctx)
        self._retire_non_finite(losses, images, step)
        total = torch.where(self.alive, losses, torch.zeros_like(losses)).sum()
        self.optimizer.zero_grad(set_to_none=False)
        total.backward()
        grads = cast(list[torch.Tensor], [p.grad for p in self.param.parameters()])  # backward() filled each one
        _clip_per_image(grads, s.grad_clip, self.alive)
        self.optimizer.step()
        if s.clamp:
            self.param.clamp_()
        for i in range(len(self.items)):
            if bool(self.alive[i]):
                self.steps[i] = step + 1
        if s.snapshot_every and (step + 1) % s.snapshot_every == 0:
            self._snapshot(step + 1)
        with torch.no_grad():
            return torch.stack(
                [match.score(ctx.features_per_image(m).detach()).mean(1) for m, match in enumerate(self.matches)]
            ).mean(0)

    def _retire_non_finite(self, losses: torch.Tensor, images: torch.Tensor, step: int) -> None:
        """Images whose loss is NaN/inf stop here, keeping their last finite image."""
        dead = self.alive & ~torch.isfinite(losses.detach())
        for i in dead.nonzero().flatten().tolist():
            self.status[i] = "nan"
            self.messages[i] = f"loss became {losses[i].item()} at step {step + 1}; kept the image from before it"
            self.frozen[i] = images[i].detach().clamp(0, 1).cpu()
        self.alive &= ~dead

    @torch.no_grad()
    def current_images(self) -> torch.Tensor:
        """The chunk's images as they stand (an image retired for NaN shows its last finite one)."""
        images = self.param.images().detach().clamp(0, 1).cpu()
        for i, frozen in self.frozen.items():
            images[i] = frozen
        return images

    @torch.no_grad()
    def _snapshot(self, step: int) -> None:
        current = self.param.images().detach().clamp(0, 1).cpu()
        self.snapshot_steps.append(step)
        for i in range(len(self.items)):
            self.snapshots[i].append(self.frozen.get(i, current[i]))

    def _hint(self, reason: str) -> str:
        """What to change when an FFT image stayed flat: the pixel priors (TV is an L2 norm, whose pull
        does not weaken as the image gets flatter; L1 towards grey) hold a near-grey FFT start at grey."""
        s = self.settings
        if (
            s.param.name == "fft"
            and "flat image" in reason
            and any(p.weight for p in s.priors if p.name in ("tv", "l1"))
        ):
            return " (fft starts near grey, where the tv/l1 priors hold it: try --set priors.tv=0 --set priors.l1=0)"
        return ""

    @torch.no_grad()
    def _scores(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted cosine per image averaged over the models, per model [M, B]) of unaugmented images."""
        per_model = torch.stack(
            [
                match.score(_encode_per_image(model, images.clamp(0, 1), 1)).cpu()
                for model, match in zip(self.models, self.matches, strict=True)
            ]
        )
        return per_model.mean(0), per_model

    @torch.no_grad()
    def finish(self, seconds: float, interrupted: bool) -> list[Inversion]:
        images = self.param.images().detach().clamp(0, 1)
        for i, frozen in self.frozen.items():
            images[i] = frozen.to(images.device)
        cosine, per_model = self._scores(images)
        results = []
        for i, (prompt, seed) in enumerate(self.items):
            status = self.status[i]
            if interrupted and status == "done":
                status = "interrupted"
            if status == "done":
                reason = judge(images[i], float(cosine[i]), float(self.start_cosine[i]), self.settings.min_cosine)
                if reason:
                    status, self.messages[i] = "failed", reason + self._hint(reason)
            results.append(
                Inversion(
                    prompt,
                    seed,
                    images[i].cpu(),
                    float(cosine[i]),
                    seconds / len(self.items),
                    status,
                    self.steps[i],
                    self.snapshots[i],
                    self.messages[i],
                    list(self.snapshot_steps),
                    [float(c) for c in per_model[:, i]],
                    float(self.start_cosine[i]),
                )
            )
        return results


def _run_chunk(
    models: list[Session],
    items: list[tuple[str, int]],
    settings: InvertSettings,
    targets: list[tuple[torch.Tensor, torch.Tensor]],
    extra: Objective | None,
    step_offset: int,
    on_step: StepCallback | None,
    should_stop: StopCheck | None,
    preview: tuple[int, PreviewCallback] | None = None,
) -> list[Inversion]:
    start = time.perf_counter()
    chunk = _Chunk(models, items, settings, targets, extra)
    interrupted = False
    for step in range(settings.steps):
        if should_stop is not None and should_stop():
            interrupted = True
            break
        cosine = chunk.step(step)
        if on_step is not None:
            on_step(step_offset + step + 1, cosine.cpu())
        if preview is not None and ((step + 1) % preview[0] == 0 or step + 1 == settings.steps):
            preview[1](step_offset + step + 1, items, chunk.current_images(), cosine.cpu())
        if not bool(chunk.alive.any()):
            break
    return chunk.finish(time.perf_counter() - start, interrupted)


def _out_of_memory(exc: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return (oom and isinstance(exc, oom)) or "out of memory" in str(exc).lower()


def invert_items(
    session: Session,
    items: list[tuple[str, int]],
    settings: InvertSettings,
    *,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
    extra_objective: Objective | None = None,
    ensemble: Sequence[Session] = (),
    on_chunk: Callable[[list[int], list[Inversion]], None] | None = None,
    on_preview: PreviewCallback | None = None,
    preview_every: int = 0,
) -> list[Inversion]:
    """Invert (prompt, seed) pairs in the given order, `settings.batch_size` at a time.

    `ensemble`: further models (sessions on the same device) whose text terms are averaged with the
    session's model's, as the authors' code allowed; each encodes the prompts with its own text tower.

    on_step gets (steps done so far over all chunks, live cosine of the current chunk's images).
    A chunk that runs out of accelerator memory is split in half and retried. After a stop
    request, images not yet started come back with status "interrupted" and steps 0.
    on_chunk gets (indexes into items, their inversions) as soon as each chunk ends, so callers can
    save finished images before the next chunk starts.
    on_preview gets the chunk's images every `preview_every` steps and at its last step, for a live
    view; reading them draws no random numbers, so the results are the same with or without it.
    """
    if not items:
        raise UsageError("nothing to invert", hint="give at least one prompt and one seed")
    settings = settings.validated()
    models = check_ensemble(session, ensemble)
    prompt_targets = [text_targets(model, [p for p, _ in items]) for model in models]
    pending = [
        list(range(i, min(i + settings.batch_size, len(items)))) for i in range(0, len(items), settings.batch_size)
    ]
    results: dict[int, Inversion] = {}
    done_steps = 0
    while pending:
        rows = pending.pop(0)
        if should_stop is not None and should_stop():
            for r in rows:
                results[r] = _not_started(items[r], session)
            continue
        try:
            chunk = _run_chunk(
                models,
                [items[r] for r in rows],
                settings,
                [(t[rows], w[rows]) for t, w in prompt_targets],
                extra_objective,
                done_steps,
                on_step,
                should_stop,
                (max(1, preview_every), on_preview) if on_preview is not None else None,
            )
        except RuntimeError as exc:
            if not _out_of_memory(exc) or len(rows) == 1:
                raise
            if session.device.type == "cuda":
                torch.cuda.empty_cache()
            half = len(rows) // 2
            pending[:0] = [rows[:half], rows[half:]]
            continue
        done_steps += settings.steps
        results.update(zip(rows, chunk, strict=True))
        if on_chunk is not None:
            on_chunk(rows, chunk)
    return [results[i] for i in range(len(items))]


def check_ensemble(session: Session, ensemble: Sequence[Session]) -> list[Session]:
    """[session, *ensemble], refusing a model twice (same fingerprint, or the same local files spelled
    differently) or a member on another device."""
    models = [session, *ensemble]
    seen: dict[object, str] = {}
    for model in models:
        for key in filter(None, (model.fingerprint, _local_source(model))):
            if key in seen:
                raise UsageError(
                    f"the ensemble has model {model.spec.text!r} twice (same as {seen[key]!r})",
                    hint="give each model once",
                )
            seen[key] = model.spec.text
        if _device_key(model.device) != _device_key(session.device):
            raise UsageError(
                f"ensemble model {model.spec.text!r} is on {model.device}, the session on {session.device}",
                hint="open every model on the same device",
            )
    return models


def _local_source(model: Session) -> tuple[str, ...] | None:
    """The resolved files behind a local model spec (two spellings of one folder are one model)."""
    import os

    spec = model.spec
    if spec.kind == "local-dir":
        return ("local-dir", os.path.realpath(spec.arch.removeprefix("local-dir:")))  # "~" expanded by the spec
    if spec.kind == "file" and spec.weights:
        return ("file", spec.arch, os.path.realpath(os.path.expanduser(spec.weights)))
    return None


def _device_key(device: torch.device) -> tuple[str, int]:
    """cuda and cuda:0 (the current device) are one device."""
    if device.index is not None:
        return device.type, device.index
    return device.type, torch.cuda.current_device() if device.type == "cuda" else 0


def _not_started(item: tuple[str, int], session: Session) -> Inversion:
    size = session.image_size
    return Inversion(item[0], item[1], torch.full((3, size, size), 0.5), float("nan"), 0.0, "interrupted", 0)


def invert(
    session: Session,
    prompts: list[str],
    seeds: list[int],
    settings: InvertSettings,
    *,
    on_step: StepCallback | None = None,
    should_stop: StopCheck | None = None,
    extra_objective: Objective | None = None,
    ensemble: Sequence[Session] = (),
) -> list[Inversion]:
    """Every prompt x seed, optimised together; results in prompt-major order (p0s0, p0s1, ..., p1s0, ...)."""
    if not prompts:
        raise UsageError("no prompts to invert", hint="give at least one prompt")
    if not seeds:
        raise UsageError("no seeds", hint="give at least one seed, e.g. --seeds 0-3")
    return invert_items(
        session,
        [(p, int(s)) for p in prompts for s in seeds],
        settings,
        on_step=on_step,
        should_stop=should_stop,
        extra_objective=extra_objective,
        ensemble=ensemble,
    )
