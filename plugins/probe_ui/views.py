"""What the web page shows, as plain data: parsing the form's fields and turning the probes' results
into table rows and notes. No web framework here, so these are tested without a browser."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from probe.plugin import UsageError

#: Environment for a page that sends nothing off the machine: the framework's telemetry and update
#: check off. `probe ui` sets these (unless the user set them) before the framework is imported.
OFFLINE_ENV = {
    "GRADIO_ANALYTICS_ENABLED": "False",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}

#: Fonts the page uses: the system's own (no web font is fetched).
SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
MONO_FONTS = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")

FLAG_MARK = "⚑"
RUN_DEPTH = 3  # how deep below the output folder run folders are looked for (runs/NAME, bias/NAME/...)


def error_line(exc: BaseException) -> str:
    """The one line the command line prints for this error (`Error: what (hint)`)."""
    return f"Error: {exc}"


def prompt_lines(text: str | None) -> list[str]:
    """One prompt a line, as a `--prompts` file: blank lines and '#' comments skipped, ends trimmed."""
    lines = [line.strip() for line in (text or "").splitlines()]
    prompts = [line for line in lines if line and not line.startswith("#")]
    if not prompts:
        raise UsageError("no prompts given", hint="type one prompt a line")
    if any("\x00" in p for p in prompts):
        raise UsageError("a prompt contains a NUL character", hint="remove it")
    return prompts


def seed_list(text: str | float | None) -> list[int]:
    """'0-3,7' (the `--seeds` syntax) -> seeds; empty means seed 0."""
    from probe.plugin import parse_seeds

    value = str(int(text)) if isinstance(text, float) else (text or "").strip()
    if not value:
        return [0]
    try:
        return parse_seeds(value)
    except ValueError as exc:
        raise UsageError(f"bad seeds {value!r}: {exc}", hint="e.g. 0-3 or 0,5,9") from None


def whole_number(value: Any, name: str, low: int = 1) -> int | None:
    """A form's number field as an int, None when left empty; a fraction, a word or too small a value
    is a UsageError that names the field."""
    number = _number(value, name)
    if number is None:
        return None
    if number != int(number) or int(number) < low:
        raise UsageError(f"{name} must be a whole number of at least {low}, got {value}")
    return int(number)


def _number(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"{name} must be a number, got {value!r}", hint="or leave it empty for the preset's") from None
    if math.isnan(number) or math.isinf(number):
        raise UsageError(f"{name} must be a finite number, got {value!r}")
    return number


def invert_knobs(steps: Any, size: Any, copies: Any, lr: Any, tv: Any) -> tuple[dict[str, Any], list[str]]:
    """The Invert tab's fields as (knobs for the preset, `--set` assignments); an empty field keeps the preset's."""
    knobs: dict[str, Any] = {
        "steps": whole_number(steps, "steps"),
        "size": whole_number(size, "size"),
        "copies": whole_number(copies, "copies"),
    }
    rate = _number(lr, "learning rate")
    if rate is not None:
        if rate <= 0:
            raise UsageError(f"the learning rate must be above 0, got {lr}")
        knobs["lr"] = rate
    weight = _number(tv, "TV prior weight")
    assignments = [] if weight is None else [f"priors.tv={weight}"]
    return {k: v for k, v in knobs.items() if v is not None}, assignments


def invert_rows(rows: Iterable[dict[str, Any]]) -> list[list[Any]]:
    """The summary table of `probe invert`: prompt, seed, cosine, status, steps, seconds."""
    return [
        [
            r["prompt"],
            r["seed"],
            f"{r['cosine']:.3f}" if r.get("cosine") is not None else "-",
            r["status"] + (" (skipped)" if r.get("skipped") else ""),
            r["steps"],
            r["seconds"],
        ]
        for r in rows
    ]


INVERT_COLUMNS = ["prompt", "seed", "cosine", "status", "steps", "seconds"]


def invert_notes(run: Any) -> list[str]:
    """The notes `probe invert` prints after its table, for the page."""
    notes = list(run.notes)
    if run.skipped:
        notes.insert(0, f"{run.skipped} of {len(run.rows)} images already finished in {run.folder}: skipped")
    notes += [f"failed: {r['prompt']!r} seed {r['seed']}: {r['message']}" for r in run.failed]
    if run.interrupted:
        partial = sum(1 for r in run.rows if r["status"] == "interrupted" and r["png"])
        notes.append(f"Stopped: saved {partial} partial image(s); run again to finish the rest.")
    return notes


def preview_caption(prompt: str, seed: int, step: int, total: int, cosine: float) -> str:
    return f"{prompt} · seed {seed} · step {step}/{total} · cos {cosine:.3f}"


def download_files(rows: Iterable[dict[str, Any]]) -> list[str]:
    """Each saved image's PNG and its JSON sidecar, as the command line wrote them."""
    return [path for r in rows for path in (r.get("png"), r.get("sidecar")) if path]


NEIGHBOUR_COLUMNS = ["query", "#", "word", "cosine", "vocab", "flagged"]


def neighbour_rows(results: Iterable[Any], names: dict[str, str] | None = None) -> list[list[Any]]:
    """One row per neighbour; a flagged word is marked with its category (or 'yes') after the flag."""
    rows = []
    for result in results:
        query = (names or {}).get(result.query, result.query)
        for i, n in enumerate(result.neighbours, 1):
            flag = f"{FLAG_MARK} {n.category or 'yes'}" if n.flagged else ""
            rows.append([query, i, n.word, f"{n.score:.3f}", n.vocab, flag])
    return rows


FLAG_RATE_COLUMNS = ["query", "flagged share", "flagged / neighbours", "flagged words"]


def flag_rate_rows(results: Iterable[Any], rate: Any, names: dict[str, str] | None = None) -> list[list[Any]]:
    """`probe neighbours --flag-rate` as a table: each query's share of flagged words in its top-k
    (with those words), then the share pooled over all queries."""
    rows = []
    for result in results:
        flagged = [n.word for n in result.neighbours if n.flagged]
        query = (names or {}).get(result.query, result.query)
        share = rate.per_query[result.query]
        rows.append([query, f"{share:.0%}", f"{len(flagged)}/{len(result.neighbours)}", ", ".join(flagged)])
    count = len(rate.per_query)
    rows.append(
        [f"all {count} quer{'y' if count == 1 else 'ies'}", f"{rate.overall:.1%}", f"{rate.flagged}/{rate.total}", ""]
    )
    return rows


def score_table(result: Any) -> tuple[list[str], list[list[str]]]:
    """(columns, rows) of `probe score`: each image's cosine (zero-shot probability) per prompt, and its label."""
    rows = [
        [name, *(f"{c:.3f} ({p:.0%})" for c, p in zip(cos, probs, strict=True)), label]
        for name, cos, probs, label in zip(result.names, result.cosine, result.probs, result.labels, strict=True)
    ]
    return ["image", *result.prompts, "label"], rows


CAPTION_SOURCE = "typed captions (and uploaded images)"
WORLD_SOURCE = "the built-in world's scenes"
SHUFFLE_SOURCES = [CAPTION_SOURCE, WORLD_SOURCE]
WORLD_SCENES = 8  # the page's default number of world scenes


def world_request(
    source: str | None, scenes: Any, relations: list[str] | None, uploads: Any
) -> tuple[int, list[str]] | None:
    """The Shuffle-test tab's source: None for typed captions, else (number of scenes, relations) for
    `shuffle-test --world N --relation ...` (every relation when none is chosen)."""
    if source != WORLD_SOURCE:
        return None
    if uploads:
        raise UsageError("world scenes bring their own images", hint="remove the uploads, or choose typed captions")
    return whole_number(scenes, "world scenes") or WORLD_SCENES, list(relations or [])


VARIANT_COLUMNS = ["caption", "perturbation", "variant", "score", "Δ"]


def variant_rows(report: Any) -> list[list[Any]]:
    """Each perturbed caption with its score and change from the original's."""
    return [
        [r["caption"], r["perturbation"], r["variant"], f"{r['score']:.4f}", f"{r['delta']:+.4f}"]
        for r in report.variant_rows()
    ]


def run_folders(out_dir: Path) -> list[str]:
    """Run folders (those with a manifest.json) below the output folder, as paths relative to it."""
    out_dir = Path(out_dir)
    found = []
    for depth in range(1, RUN_DEPTH + 1):
        found += [m.parent for m in out_dir.glob("/".join(["*"] * depth) + "/manifest.json")]
    return sorted(str(f.relative_to(out_dir)) for f in found)


def run_folder(out_dir: Path, name: str | None) -> Path:
    """The run folder NAME below the output folder; anything outside it, or not a run, is a UsageError."""
    if not name:
        raise UsageError("no run chosen", hint="pick a run folder from the list (refresh it after a run)")
    base = Path(out_dir).resolve()
    folder = (base / name).resolve()
    if base not in folder.parents or not (folder / "manifest.json").is_file():
        raise UsageError(f"{name} is not a run folder under {out_dir}", hint="pick one from the list")
    return folder


def sheets_of(folder: Path) -> list[str]:
    """A run's contact sheets (its sheets/ folder), in name order."""
    return [str(p) for p in sorted(Path(folder).glob("sheets/**/*.png"))]


def framed_report(page: str) -> str:
    """A report page inside a sandboxed frame (no scripts, no access to the app), as inert text."""
    return (
        '<iframe title="run report" sandbox="" style="width:100%;height:720px;border:1px solid #ccc" '
        f'srcdoc="{html.escape(page, quote=True)}"></iframe>'
    )


def model_rows(description: dict[str, Any]) -> list[list[str]]:
    """The loaded model's description (what sidecars record) as key / value rows."""
    return [[str(k), str(v)] for k, v in description.items()]


def inside_folder(path: str | Path, folder: Path) -> bool:
    """Whether a path lies inside the folder (after resolving links): what the page may serve."""
    resolved, base = Path(path).resolve(), Path(folder).resolve()
    return resolved == base or base in resolved.parents
