"""Run-folder algebra: what `probe merge` keeps, and what `--resume` recomputes, for one item that two
folders hold as done, failed, pending (no record) or done with a damaged image, given in either
order, across shard folders and an unsharded folder.

The rule: a better record wins (done over failed over pending); a done record whose image is
missing or damaged is not finished (it counts as pending, as resume treats it); between two equal
records the folder given first wins. No model runs: the folders are written with the runner's own
record and manifest writers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from probe_run.experiment import load_experiment
from probe_run.runner import _manifest, _write_outcome, merge_runs, read_records, record_path, statuses

from probe.plugin import Outcome

EXPERIMENT = """\
name: algebra
steps:
  - invert: {name: inv, prompts: [a star], seeds: 0-3, settings: {steps: 1, size: 32, copies: 1}, batch: 1}
"""
MODEL = {"model": "shapes-tiny", "fingerprint": "f" * 16}


@pytest.fixture
def plan(tmp_path: Path):
    path = tmp_path / "exp.yaml"
    path.write_text(EXPERIMENT)
    return load_experiment(path)


def write_folder(folder: Path, plan, shard, state: str, mark: float) -> None:
    """A run folder whose first item (owned by shard 0 of 2) is in `state`; `mark` tells the folders apart."""
    item = plan.items[0]
    if state in ("done", "broken"):
        image = torch.full((3, 4, 4), mark)
        _write_outcome(folder, item, "invert", Outcome(item.id, "done", {"cosine": mark}, image, seconds=0.0))
        if state == "broken":
            png = folder / "images" / f"{item.id}.png"
            png.write_bytes(png.read_bytes()[:40])  # truncated, as by a killed copy
    elif state == "failed":
        _write_outcome(folder, item, "invert", Outcome(item.id, "failed", message=f"failed in {mark}"))
    else:
        folder.mkdir(parents=True, exist_ok=True)
    status = statuses(plan, read_records(folder, plan), shard)
    manifest = _manifest(plan, MODEL, {}, shard, status, None, "2026-01-01T00:00:00")
    (folder / "manifest.json").write_text(json.dumps(manifest))


# (state in folder A, state in folder B) -> the winner: "A", "B" (that folder's record) or "pending"
CASES = {
    ("done", "failed"): "A",
    ("failed", "done"): "B",
    ("done", "pending"): "A",
    ("pending", "done"): "B",
    ("failed", "pending"): "A",
    ("pending", "failed"): "B",
    ("pending", "pending"): "pending",
    ("done", "done"): "A",
    ("failed", "failed"): "A",
    ("broken", "done"): "B",
    ("done", "broken"): "A",
    ("broken", "failed"): "B",
    ("failed", "broken"): "A",
    ("broken", "pending"): "pending",
    ("broken", "broken"): "pending",
}
SHARDS = {"two shards-0": ((0, 2), (0, 2)), "unsharded + shard": (None, (0, 2)), "shard + unsharded": ((0, 2), None)}


def _cases():
    for (a, b), winner in CASES.items():
        for layout, (shard_a, shard_b) in SHARDS.items():
            if layout == "two shards-0":
                continue  # the same shard twice is refused (tested below)
            yield pytest.param(a, b, shard_a, shard_b, winner, id=f"{a}-{b}-{layout}")


@pytest.mark.parametrize(("a", "b", "shard_a", "shard_b", "winner"), list(_cases()))
def test_merge_keeps_the_better_record_whatever_the_order(tmp_path, plan, a, b, shard_a, shard_b, winner):
    write_folder(tmp_path / "A", plan, shard_a, a, 0.25)
    write_folder(tmp_path / "B", plan, shard_b, b, 0.75)
    result = merge_runs([tmp_path / "A", tmp_path / "B"], tmp_path / "merged")
    item = plan.items[0]
    path = record_path(tmp_path / "merged", item.id)
    if winner == "pending":
        assert not path.is_file() and result.counts["done"] == 0 and result.counts["failed"] == 0
        return
    source = tmp_path / winner
    assert json.loads(path.read_text()) == json.loads(record_path(source, item.id).read_text())
    record = json.loads(path.read_text())
    if record["status"] == "done":
        png = f"images/{item.id}.png"
        assert (tmp_path / "merged" / png).read_bytes() == (source / png).read_bytes()
    expected = {"done": 0, "failed": 0, "pending": len(plan.items)}
    expected[record["status"]] += 1
    expected["pending"] -= 1
    assert result.counts == expected
    # an unsharded folder holds every shard's items: no shard is missing when one is given
    assert result.missing_shards == ([] if None in (shard_a, shard_b) else [1])


@pytest.mark.parametrize("state", ["done", "failed", "pending", "broken"])
def test_resume_recomputes_all_but_an_intact_done_item(tmp_path, plan, state):
    write_folder(tmp_path / "A", plan, None, state, 0.25)
    status = statuses(plan, read_records(tmp_path / "A", plan, verify_images=True), None)
    assert status[plan.items[0].id] == {"done": "done", "failed": "failed"}.get(state, "pending")
    owned = statuses(plan, read_records(tmp_path / "A", plan, verify_images=True), (1, 2))
    assert plan.items[0].id not in owned and len(owned) == 2


def test_the_same_shard_twice_is_refused(tmp_path, plan):
    from probe.errors import UsageError

    write_folder(tmp_path / "A", plan, (0, 2), "done", 0.25)
    write_folder(tmp_path / "B", plan, (0, 2), "failed", 0.75)
    with pytest.raises(UsageError, match="more than once"):
        merge_runs([tmp_path / "A", tmp_path / "B"], tmp_path / "merged")
