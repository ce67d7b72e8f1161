"""The `shuffle` experiment step kind: a text shuffle test of the step's prompts, one report item."""

from __future__ import annotations

from probe.plugin import (
    Chunk,
    Item,
    Outcome,
    PlanInput,
    StepContext,
    StepKind,
    StepOptions,
    StepPlan,
    StepSummary,
    Table,
)


def _normalise(opts: StepOptions) -> dict:
    names = opts["perturbations"]
    seed = opts["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise opts.error("seed", f"seed must be a non-negative integer, got {seed!r}")
    return {
        "prompts": opts.text_list("prompts", "prompts"),
        "perturbations": None if names is None else opts.text_list("perturbations", "perturbations"),
        "seed": seed,
        "n_variants": opts.positive_int("n_variants"),
    }


def _plan(p: PlanInput) -> list[Chunk]:
    name = p.step["name"]
    return [Chunk(name, 0, p.slot, [Item(f"{name}/report", name, "report", {"prompts": p.step["prompts"]})])]


def _run(step: StepPlan, chunk: Chunk, ctx: StepContext) -> list[Outcome]:
    from probe_shuffle.order_scores import text_shuffle_test
    from probe_shuffle.perturbations import list_perturbations

    opts = step.options
    names = opts["perturbations"] or list_perturbations()
    report = text_shuffle_test(ctx.session, opts["prompts"], names, seed=opts["seed"], n_variants=opts["n_variants"])
    return [Outcome(chunk.items[0].id, "done", {"report": report.as_dict()})]


def _summarise(step: StepPlan, records: dict[str, dict]) -> StepSummary:
    """The table `probe shuffle-test` prints, from the stored report (P@1 and order blindness only in image mode)."""
    from types import SimpleNamespace

    from probe_shuffle.plugin import summary_table

    done = step.done_records(records)
    report = done[0]["result"]["report"] if done else {}
    rows = [SimpleNamespace(**row) for row in report.get("rows", [])]
    title, columns, cells = summary_table(rows, report.get("mode", "text"), f"shuffle: {step.name}")
    data = {"report": report, "status": step.status_counts(records)}
    return StepSummary(step.name, step.kind, Table(title, columns, cells), data, title="Word-order shuffle test")


SHUFFLE_STEP = StepKind(
    "shuffle",
    {"prompts": None, "perturbations": None, "seed": 0, "n_variants": 1},
    _normalise,
    _run,
    plan=_plan,
    summarise=_summarise,
    about="a text shuffle test of the prompts (mean score change, order blindness, P@1 per perturbation)",
)
