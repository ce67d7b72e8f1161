"""Run folders: execute a plan (or one shard of it) with resume, and merge shard folders.

Layout: manifest.json · items/<step>/<key>.json (one record per item, written last, atomically) ·
images/<step>/<key>.png · summary.json, tables/, sheets/ (recomputed from the records by finalise).
An item is finished when its record says done, so an interrupted run loses only the chunk in flight.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

from probe.plugin import (
    ConfigError,
    ProbeError,
    StepContext,
    UsageError,
    atomic_write_bytes,
    image_intact,
    inside,
    plugin_replacements,
    read_json,
    write_json,
    write_png,
)
from probe_run.engines import Executor, LocalExecutor, run_chunk
from probe_run.experiment import Plan, plan_from_spec

__all__ = ["RunResult", "finalise", "merge_runs", "read_records", "run_chunk", "run_plan"]

RUN_FORMAT = "clip-probe-run/1"
Progress = Callable[[int, int, str], None]


@dataclass
class RunResult:
    """What a run (or merge) did: counts by status, items computed now and skipped as finished."""

    folder: Path
    plan: Plan
    shard: tuple[int, int] | None
    counts: dict[str, int]
    ran: int = 0
    skipped: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    missing_shards: list[int] = field(default_factory=list)
    shard_count: int = 0  # of a merge: how many shards the experiment was split into
    engine: str = "local"
    workers: list[dict] = field(default_factory=list)  # per worker: chunks, items, seconds, overhead
    interrupted: bool = False  # stopped by Ctrl-C or SIGTERM before every chunk ran

    @property
    def exit_code(self) -> int:
        """130 when stopped by a signal (as `probe invert`); 1 when any item failed or a merge lacks
        shards (so `afterok` chains stop); else 0."""
        if self.interrupted:
            return 130
        return 1 if self.counts.get("failed", 0) or self.missing_shards else 0

    def notes(self) -> list[str]:
        """What a command says after the tables: counts, the first failures, missing shards."""
        c = self.counts
        out = [
            f"{self.folder}: {c.get('done', 0)} done, {c.get('failed', 0)} failed, {c.get('pending', 0)} pending "
            f"({self.ran} computed now, {self.skipped} already finished)"
        ]
        out += [f"  failed {item}: {message}" for item, message in list(self.failures.items())[:5]]
        if self.missing_shards:
            n, flags = self.shard_count, ", ".join(f"--shard {i}/{self.shard_count}" for i in self.missing_shards)
            out.append(
                f"missing shards: {', '.join(map(str, self.missing_shards))} of {n} (their items are pending: "
                f"run the experiment with {flags} and merge every shard's folder)"
            )
        if self.engine != "local":
            out += [
                f"  worker {w['name']} ({w['device']}): {w['items']} items in {w['chunks']} chunks, "
                f"{w['seconds']:.1f} s computing" + (f", died with {w['lost']} chunk(s) in flight" if w["lost"] else "")
                for w in self.workers
            ]
        if self.interrupted:
            out.append(
                f"Interrupted: kept {self.counts.get('done', 0)} finished item(s); "
                "rerun the same command with --resume to finish the rest."
            )
        return out

    def summary(self) -> dict:
        """The run folder's summary.json: per step its table and data."""
        return read_json(self.folder / "summary.json")

    def as_dict(self) -> dict:
        return {
            "folder": str(self.folder),
            "experiment": self.plan.name,
            "shard": list(self.shard) if self.shard else None,
            "counts": self.counts,
            "ran": self.ran,
            "skipped": self.skipped,
            "failures": self.failures,
            "missing_shards": self.missing_shards,
            "engine": self.engine,
            "workers": self.workers,
        }


def versions() -> dict[str, str]:
    """Versions that can change results, for the manifest."""
    from probe.files.versions import package_version

    return {"python": platform.python_version()} | {
        dist: package_version(dist) for dist in ("clip-probe", "torch", "open_clip_torch", "numpy")
    }


def record_path(folder: Path, item_id: str) -> Path:
    return inside(folder, f"items/{item_id}.json")


def read_records(folder: Path, plan: Plan, verify_images: bool = False) -> dict[str, dict]:
    """Records of the plan's items present in the folder (unreadable ones count as absent; with
    verify_images, so does a record whose PNG is missing, truncated or damaged: resume recomputes it)."""
    out = {}
    for item in plan.items:
        path = record_path(folder, item.id)
        if path.is_file():
            try:
                record = read_json(path)
            except Exception:  # a torn or corrupt record means: not finished, recompute it
                continue
            if verify_images and record.get("image") and not _image_ok(folder, record["image"]):
                continue
            out[item.id] = record
    return out


def _image_ok(folder: Path, rel: str) -> bool:
    """Whether a run folder's image (a path inside it) exists and decodes completely."""
    try:
        return image_intact(inside(folder, rel))
    except ProbeError:  # a record naming a path outside the folder is no finished image
        return False


def statuses(plan: Plan, records: dict[str, dict], shard: tuple[int, int] | None) -> dict[str, str]:
    """id -> done | failed | pending for the items this run (or shard) owns."""
    owned = [it for c in plan.chunks_for(shard) for it in c.items]
    return {it.id: records.get(it.id, {}).get("status", "pending") for it in owned}


def _counts(status: dict[str, str]) -> dict[str, int]:
    out = {"done": 0, "failed": 0, "pending": 0}
    for s in status.values():
        out[s] = out.get(s, 0) + 1
    return out


def _manifest(
    plan: Plan,
    model: dict,
    labellers: dict,
    shard,
    status: dict[str, str],
    source: str | None,
    created: str,
    merged_from: list[str] | None = None,
) -> dict:
    return {
        "format": RUN_FORMAT,
        "experiment": plan.spec,
        "digest": plan.digest,
        "source": source,
        "model": model,
        "labellers": labellers,
        "versions": versions(),
        "plugins": {"replaced": plugin_replacements()},  # plugins that replaced a part this run may use
        "shard": {"index": shard[0], "count": shard[1]} if shard else None,
        "merged_from": merged_from,
        "counts": _counts(status),
        "items": status,
        "created": created,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        raise UsageError(
            f"{folder} is not a run folder (no manifest.json)", hint="give a folder written by probe run, bias or nsfw"
        )
    manifest = read_json(path)
    if manifest.get("format") != RUN_FORMAT:
        raise UsageError(f"{path}: unknown run format {manifest.get('format')!r}")
    return manifest


def plan_of(folder: Path) -> Plan:
    """The plan a run folder was made from (its manifest holds the whole normalised experiment)."""
    return plan_from_spec(read_manifest(folder)["experiment"])


def _check_resume(folder: Path, plan: Plan, model: dict, shard, resume: bool) -> dict | None:
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        if folder.is_dir() and any(folder.iterdir()):
            raise UsageError(
                f"output folder {folder} is not empty and holds no run", hint="choose another folder with -o/--run-dir"
            )
        return None
    if not resume:
        raise UsageError(f"{folder} already holds a run", hint="pass --resume to continue it, or choose another folder")
    old = read_manifest(folder)
    if old["digest"] != plan.digest:
        raise ConfigError(
            f"{folder} was made from a different experiment",
            hint="resume with the same experiment file, or use a new folder",
        )
    if old["model"].get("fingerprint") != model.get("fingerprint"):
        raise ConfigError(
            f"{folder} was made with model {old['model'].get('model')!r} (another fingerprint)",
            hint="resume with the same model, or use a new folder",
        )
    old_shard = (old["shard"]["index"], old["shard"]["count"]) if old.get("shard") else None
    if old_shard != shard:
        raise ConfigError(
            f"{folder} holds shard {old_shard} but this run is shard {shard}",
            hint="use the same --shard or another folder",
        )
    return old


def _write_outcome(folder: Path, item, kind: str, outcome) -> None:
    """The PNG first, the record last: a record on disk means its image is complete."""
    image_rel = None
    if outcome.image is not None:
        image_rel = f"images/{item.id}.png"
        meta = {
            "probe": {
                "item": item.id,
                **item.params,
                **{k: v for k, v in outcome.result.items() if k in ("cosine", "label")},
            }
        }
        write_png(inside(folder, image_rel), outcome.image, meta)
    write_json(
        record_path(folder, item.id),
        {
            "id": item.id,
            "step": item.step,
            "key": item.key,
            "kind": kind,
            "status": outcome.status,
            "params": item.params,
            "result": outcome.result,
            "image": image_rel,
            "message": outcome.message,
            "seconds": None if outcome.seconds is None else round(outcome.seconds, 3),
        },
    )


def run_plan(
    plan: Plan,
    folder: Path,
    session,
    session_for: Callable[[str], Any] | None,
    *,
    shard: tuple[int, int] | None = None,
    resume: bool = False,
    source: str | None = None,
    on_progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Compute every pending item of the plan (or of one shard), chunk by chunk, then write the summaries.

    `executor` computes the chunks (default: in order in this process with `session`; the Ray engine
    passes None for the session: its workers hold their own); this function alone writes the folder."""
    from probe.plugin import check_writable, folder_lock

    folder = Path(folder)
    check_writable(folder.parent)  # a read-only parent: one line naming it, before the lock file is made
    with folder_lock(folder, "run"):
        return _run_locked(
            plan,
            folder,
            StepContext(session, session_for or _no_session, folder, should_stop),
            executor or LocalExecutor(),
            shard,
            resume,
            source,
            on_progress,
        )


def _no_session(spec: str) -> Any:
    raise UsageError(f"no session for {spec!r} in this process")


def _run_locked(
    plan: Plan,
    folder: Path,
    ctx: StepContext,
    executor: Executor,
    shard: tuple[int, int] | None,
    resume: bool,
    source: str | None,
    on_progress: Progress | None,
) -> RunResult:
    from contextlib import closing

    from probe.plugin import remove_stale_temp_files

    model = executor.model(ctx)
    old = _check_resume(folder, plan, model, shard, resume)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(folder)  # left by a killed run; we hold the folder's lock
    created = old["created"] if old else time.strftime("%Y-%m-%dT%H:%M:%S")
    ctx.labellers.update(dict(old.get("labellers") or {}) if old else {})
    records = read_records(folder, plan, verify_images=True)
    status = statuses(plan, records, shard)
    result = RunResult(folder, plan, shard, _counts(status), engine=executor.name)
    total, done_now = len(status), sum(1 for s in status.values() if s == "done")
    write_json(folder / "manifest.json", _manifest(plan, model, ctx.labellers, shard, status, source, created))
    try:
        for _name, group in groupby(plan.chunks_for(shard), key=lambda c: c.step):
            # one step at a time: a step may read the files of earlier steps, written here as they arrive
            work, pending = [], {}
            for chunk in group:
                todo = {it.id for it in chunk.items if status[it.id] != "done"}
                result.skipped += len(chunk.items) - len(todo)
                if todo:
                    work.append((plan.step(chunk.step), chunk))
                    pending[chunk.step, chunk.index] = todo
            stop = False
            with closing(executor.compute(work, ctx)) as computed:
                for step, chunk, outcomes in computed:
                    by_id = {it.id: it for it in chunk.items}
                    for outcome in outcomes:
                        if outcome.item_id not in pending[chunk.step, chunk.index]:
                            continue
                        _write_outcome(folder, by_id[outcome.item_id], step.kind, outcome)
                        status[outcome.item_id] = outcome.status
                        result.ran += 1
                        if outcome.status == "done":
                            done_now += 1
                        else:
                            result.failures[outcome.item_id] = outcome.message
                    write_json(
                        folder / "manifest.json", _manifest(plan, model, ctx.labellers, shard, status, source, created)
                    )
                    if on_progress:
                        on_progress(done_now, total, chunk.step)
                    if ctx.should_stop and ctx.should_stop():
                        stop = True
                        result.interrupted = True
                        break
            if stop:
                break
    finally:
        write_json(folder / "manifest.json", _manifest(plan, model, ctx.labellers, shard, status, source, created))
        result.workers = [w.as_dict() for w in executor.workers()]
    result.counts = _counts(status)
    finalise(folder, plan)
    return result


def finalise(folder: Path, plan: Plan, blur: bool = True) -> dict:
    """Recompute summary.json, tables/ and sheets/ from the records (needs no model)."""
    from probe_run.summaries import write_summaries

    return write_summaries(folder, plan, read_records(folder, plan), blur=blur)


def merge_runs(folders: list[Path], out: Path) -> RunResult:
    """Combine shard folders of one experiment into `out`; the result equals an unsharded run.

    Per item the better record wins (done over failed over none), the folder given first among
    equals; a done record whose image is missing or damaged counts as none. An unsharded folder
    among them holds every shard's items, so then no shard is missing."""
    if not folders:
        raise UsageError("give at least one shard folder to merge")
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"merge output {out} is a file, not a folder", hint="choose a new folder with -o")
    manifests = [read_manifest(f) for f in folders]
    first = manifests[0]
    for f, m in zip(folders, manifests, strict=True):
        if m["digest"] != first["digest"]:
            raise ConfigError(
                f"{f} is from a different experiment than {folders[0]}", hint="merge shards of one experiment only"
            )
        if m["model"].get("fingerprint") != first["model"].get("fingerprint"):
            raise ConfigError(f"{f} used another model than {folders[0]}")
    out = Path(out)
    if (out / "manifest.json").is_file() or (out.is_dir() and any(out.iterdir())):
        raise UsageError(f"merge output {out} is not empty", hint="choose a new folder with -o")
    plan = plan_from_spec(first["experiment"])
    counts = {m["shard"]["count"] for m in manifests if m.get("shard")}
    if len(counts) > 1:
        raise ConfigError(f"shard folders disagree on the number of shards: {sorted(counts)}")
    indexes = [m["shard"]["index"] for m in manifests if m.get("shard")]
    twice = sorted({i for i in indexes if indexes.count(i) > 1})
    if twice:
        raise UsageError(f"shard {twice[0]} is given more than once", hint="pass each shard folder once")
    whole = any(not m.get("shard") for m in manifests)  # an unsharded folder holds every shard's items
    shard_count = next(iter(counts)) if counts else 0
    missing = sorted(set(range(shard_count)) - set(indexes)) if counts and not whole else []
    out.mkdir(parents=True, exist_ok=True)
    merged: dict[str, dict] = {}
    rank = {"done": 2, "failed": 1}
    for folder in folders:
        # a done record whose image is missing or damaged is not finished (as for resume); a better
        # record wins (done over failed), and between equal ones the folder given first
        for item_id, record in read_records(Path(folder), plan, verify_images=True).items():
            if item_id in merged and rank.get(merged[item_id]["status"], 0) >= rank.get(record["status"], 0):
                continue
            if record.get("image"):
                atomic_write_bytes(inside(out, record["image"]), inside(Path(folder), record["image"]).read_bytes())
            write_json(record_path(out, item_id), record)
            merged[item_id] = record
    status = {it.id: merged.get(it.id, {}).get("status", "pending") for it in plan.items}
    labellers: dict = {}
    for m in manifests:
        labellers.update(m.get("labellers") or {})
    write_json(
        out / "manifest.json",
        _manifest(
            plan,
            first["model"],
            labellers,
            None,
            status,
            first.get("source"),
            first["created"],
            merged_from=[str(f) for f in folders],
        ),
    )
    finalise(out, plan)
    return RunResult(out, plan, None, _counts(status), missing_shards=missing, shard_count=shard_count)
