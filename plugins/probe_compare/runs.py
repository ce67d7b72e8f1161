"""Run folders read for a comparison: each one's manifest (experiment digest, model) and summary
(the tables' data and image cells the engine wrote), checked to be runs of one experiment whose
steps all finished. Only files are read: no model loads, no engine code runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from probe.plugin import ConfigError, UsageError, python_api, read_json


@dataclass
class Run:
    """One run folder: where it is, the model's name as the comparison shows it, and its summary."""

    folder: Path
    model: str
    fingerprint: str
    experiment: str
    digest: str
    steps: list[dict]  # summary.json's steps: name, kind, table, data, sheets, cells

    def step(self, name: str) -> dict | None:
        return next((s for s in self.steps if s["name"] == name), None)


def _finish_hint(run_model: str, folder: Path, source: str | None) -> str:
    return f"finish it with `probe -m {run_model} run {source or 'EXPERIMENT.yaml'} --run-dir {folder} --resume`"


def _read(folder: Path) -> tuple[dict, dict | None]:
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise UsageError(
            f"{folder} is not a run folder (no manifest.json)",
            hint="give folders written by `probe run`, `probe bias` or `probe nsfw`, one per model",
        )
    manifest = read_json(manifest_path)
    if not isinstance(manifest, dict) or "digest" not in manifest or "model" not in manifest:
        raise UsageError(f"{manifest_path} is not a run manifest", hint="give run folders written by `probe run`")
    summary_path = folder / "summary.json"
    return manifest, read_json(summary_path) if summary_path.is_file() else None


def _labels(models: list[str], folders: list[Path]) -> list[str]:
    """Each run's model name; runs of one model name are told apart by their folder."""
    return [m if models.count(m) == 1 else f"{m} ({f.name})" for m, f in zip(models, folders, strict=True)]


def load_runs(folders: list[Path]) -> list[Run]:
    """The runs to compare, in the order given (the first is the baseline of every difference).

    Refuses fewer than two folders, runs of different experiments, and a run whose steps did not
    all finish (naming the step, the folder and the model it belongs to)."""
    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise UsageError(
            "give at least two run folders to compare",
            hint="run one experiment per model: `probe -m A run EXP --run-dir A`, `probe -m B run EXP --run-dir B`",
        )
    read = [_read(f) for f in folders]
    first_manifest = read[0][0]
    first_name = first_manifest.get("experiment", {}).get("name", "?")
    # the experiment without its model: a comparison's model folders each name their own model
    steps_digest = python_api().require("steps_digest", need="probe compare").function
    first_steps = steps_digest(first_manifest.get("experiment", {}))
    for folder, (manifest, _) in zip(folders, read, strict=True):
        if steps_digest(manifest.get("experiment", {})) != first_steps:
            name = manifest.get("experiment", {}).get("name", "?")
            raise ConfigError(
                f"{folder} is a run of another experiment ({name!r}) than {folders[0]} ({first_name!r})",
                hint="compare runs of one experiment file, one run per model",
            )
    models = [m["model"].get("model") or "?" for m, _ in read]
    labels = _labels(models, folders)
    runs = []
    for folder, label, model, (manifest, summary) in zip(folders, labels, models, read, strict=True):
        source = manifest.get("source")
        if summary is None:
            raise UsageError(
                f"{folder} (model {model}) has no summary.json: the run never finished",
                hint=_finish_hint(model, folder, source),
            )
        runs.append(
            Run(
                folder,
                label,
                manifest["model"].get("fingerprint") or "",
                first_name,
                manifest["digest"],
                summary.get("steps", []),
            )
        )
        items = manifest.get("items") or {}
        for step in first_manifest.get("experiment", {}).get("steps", []):
            name = step.get("name")
            own = [status for item, status in items.items() if item.split("/", 1)[0] == name]
            pending = sum(status == "pending" for status in own)
            if not own or pending or runs[-1].step(name) is None:
                missing = f"{pending} of {len(own)} items unfinished" if own else "no items"
                raise UsageError(
                    f"step {name!r} is missing from {folder} (model {model}): {missing}",
                    hint=_finish_hint(model, folder, source),
                )
    return runs
