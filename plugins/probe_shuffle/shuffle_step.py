"""The `shuffle` experiment step kind: a text shuffle test of the step's prompts, one report item."""

from __future__ import annotations

from pydantic import Field

from probe.plugin import (
    Chunk,
    Item,
    Outcome,
    PlanInput,
    StepContext,
    StepKind,
    StepOptions,
    StepOptionsModel,
    StepPlan,
    StepSummary,
    Table,
    TextList,
)


class ShuffleStepOptions(StepOptionsModel):
    """The shuffle step's options, each declared once."""

    prompts: TextList = Field(description="captions to perturb")
    perturbations: TextList | None = Field(default=None, description="perturbation names (default: all)")
    seed: int = Field(default=0, ge=0, description="seed of the random perturbations")
    n_variants: int = Field(default=1, ge=1, description="random variants per caption and perturbation")


def _normalise(opts: StepOptions) -> dict:
    return opts.check(ShuffleStepOptions).model_dump()


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

    from probe_shuffle.summary import summary_table

    done = step.done_records(records)
    report = done[0]["result"]["report"] if done else {}
    rows = [SimpleNamespace(**row) for row in report.get("rows", [])]
    stored = SimpleNamespace(rows=rows, mode=report.get("mode", "text"))
    title, columns, cells = summary_table(stored, f"shuffle: {step.name}")  # type: ignore[arg-type]
    data = {"report": report, "status": step.status_counts(records)}
    return StepSummary(step.name, step.kind, Table(title, columns, cells), data, title="Word-order shuffle test")


SHUFFLE_STEP = StepKind(
    "shuffle",
    ShuffleStepOptions.defaults(),
    _normalise,
    _run,
    plan=_plan,
    summarise=_summarise,
    about="a text shuffle test of the prompts (mean score change, order blindness, P@1 per perturbation)",
    model=ShuffleStepOptions,
)
