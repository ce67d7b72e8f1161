"""Entry point of the built-in `neighbours` plugin: `probe neighbours` and `probe vocabs` (thin CLI)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from probe.plugin import hookimpl

if TYPE_CHECKING:
    from probe_neighbours.index import VocabIndex

PROBE_API = 1
ARGS_GROUP = "arguments"
IMAGES_GROUP = "images"


@hookimpl
def register_vocabularies(register) -> None:
    from probe_neighbours.vocabularies import BUILTIN_VOCABS

    for name, (load, about) in BUILTIN_VOCABS.items():
        register(name, load, about)


@hookimpl
def register_experiment_steps(register) -> None:
    from probe_neighbours.neighbours_step import NEIGHBOURS_STEP

    register(NEIGHBOURS_STEP)


@hookimpl
def register_python_api(register) -> None:
    from probe_neighbours.api import neighbours

    register("neighbours", neighbours, "nearest vocabulary words of texts or images")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("neighbours", rich_help_panel="Probes")
    def neighbours(
        ctx: typer.Context,
        texts: Annotated[
            list[str] | None,
            typer.Argument(help="Texts whose nearest vocabulary words to list.", show_default=False),
        ] = None,
        file: Annotated[
            list[Path] | None,
            typer.Option(
                "--file",
                "-f",
                help="A file of prompts, one a line (repeat: each file is a group for --flag-rate).",
                show_default=False,
            ),
        ] = None,
        image: Annotated[
            list[Path] | None,
            typer.Option(
                "--image",
                "-i",
                help="An image (e.g. from `probe invert`; its sidecar's model must match). Repeat for several.",
                show_default=False,
            ),
        ] = None,
        k: Annotated[int, typer.Option("--k", "-k", min=1, max=1000, help="Neighbours per query.")] = 10,
        vocab: Annotated[
            list[str] | None,
            typer.Option(
                "--vocab",
                "-v",
                help=(
                    "A built-in list (see `probe vocabs`) or a word-list file; repeat for several. "
                    "Default: world for shapes-tiny, else clip-bpe + flagged."
                ),
                show_default=False,
            ),
        ] = None,
        flag_rate_: Annotated[
            bool,
            typer.Option(
                "--flag-rate",
                help="Report the share of flagged words in each prompt's top-k, per prompt and per group.",
            ),
        ] = False,
        rebuild: Annotated[
            bool, typer.Option("--rebuild", help="Rebuild the vocabulary indexes even if cached.")
        ] = False,
        index: Annotated[
            str, typer.Option("--index", help="flat (exact) or hnsw (approximate, for very large lists).")
        ] = "flat",
        truncate: Annotated[
            bool, typer.Option("--truncate", help="Cut prompts longer than the model's context instead of failing.")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
        csv_path: Annotated[
            Path | None,
            typer.Option("--csv", help="Write one CSV row per query and neighbour to this file.", show_default=False),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Replace the --csv file if it exists.")] = False,
    ) -> None:
        """Nearest vocabulary words of texts or images in the model's embedding space, flagged words marked."""
        from probe.plugin import check_images, check_prompts

        check_prompts(list(texts or []), "text", image_option="--image")
        check_images(list(image or []))  # headers only, before torch or the model loads
        from probe.files.checks import check_new_file

        check_new_file(csv_path, force)
        from probe.plugin import (
            UsageError,
            console,
            current_session,
            options,
            release_session,
            save_text_snapshot,
            session_for,
        )
        from probe_neighbours.vocabularies import check_vocab_names, read_entries

        groups: dict[str, list[str]] = {}
        if texts:
            groups[ARGS_GROUP] = list(texts)
        for path in file or []:
            groups[_group_name(path, groups)] = read_entries(path, "prompts")[0]
        if not groups and not image:
            raise UsageError("nothing to look up", hint="give TEXT arguments, --file PROMPTS or --image PATH")
        check_vocab_names(list(vocab or []))  # files and vocabularies: all before torch or the model loads
        from probe_neighbours.index import IndexParams

        params = IndexParams(kind=index)
        state = options(ctx)
        if len(state.models) > 1:  # a comparison: each model in turn, one loaded at a time
            answers = {}
            for spec in state.models:
                one: Any = session_for(ctx, spec, text_only=not image)
                answers[spec] = _answer(
                    one, spec, groups, image, vocab, k, params, rebuild, truncate, flag_rate_, prefix=f"{spec}: "
                )
                save_text_snapshot(one)
                del one
                release_session(ctx, spec)
            _show_comparison(answers, k, flag_rate_, as_json, csv_path)
            return
        # text only: a snapshot spares the model load (it has the session's text methods, spec and fingerprint)
        session: Any = current_session(ctx) if image else current_session(ctx, text_only=True)
        answer = _answer(session, state.model, groups, image, vocab, k, params, rebuild, truncate, flag_rate_)
        rows, rates = answer.rows, answer.rates
        if csv_path is not None:
            from probe.plugin import atomic_write_text

            atomic_write_text(csv_path, _csv_text(rows))
            console.note(f"Wrote {csv_path}")
        if as_json:
            console.print_json(answer.payload)
        elif rates is not None:
            _print_rates(console, rows, rates, k)
        else:
            _print_neighbours(console, rows, state.model)
        save_text_snapshot(session)  # once per model, after the answer: the next text-only start skips open_clip

    @app.command("vocabs", rich_help_panel="Models, plugins and data")
    def vocabs_cmd(
        as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    ) -> None:
        """List the built-in vocabularies for `probe neighbours --vocab` with their sizes."""
        from probe.plugin import console
        from probe_neighbours.vocabularies import describe_vocab, list_vocabs, load_vocab

        items = []
        for name in list_vocabs():
            v = load_vocab(name)
            items.append(
                {
                    "name": name,
                    "words": len(v.words),
                    "flagged": len(v.categories),
                    "about": describe_vocab(name),
                    "source": v.source,
                }
            )
        if as_json:
            console.print_json(items)
            return
        console.print_table(
            ["name", "words", "flagged", "about"],
            [[i["name"], f"{i['words']:,}", f"{i['flagged']:,}", i["about"]] for i in items],
            title="Vocabularies",
        )


@dataclass
class _Answer:
    """One model's answer: (group, NeighbourResult) rows, flag rates (with --flag-rate), --json payload."""

    rows: list[tuple[str, Any]]
    rates: dict | None
    payload: dict


def _answer(
    session: Any,
    model: str,
    groups: dict[str, list[str]],
    image: list[Path] | None,
    vocab: list[str] | None,
    k: int,
    params: Any,
    rebuild: bool,
    truncate: bool,
    flag_rate_: bool,
    prefix: str = "",
) -> _Answer:
    """Look up one model's neighbours of every text and image; its notes are shown as they come
    (after the model's name when several are compared)."""
    from probe.plugin import console
    from probe_neighbours.query import image_neighbours, load_query_images, text_neighbours
    from probe_neighbours.vocabularies import default_vocabs

    all_texts = [t for g in groups.values() for t in g]
    session.tokenize(all_texts, truncate=truncate)  # an over-long prompt fails before an index is built
    vocabs = list(vocab) if vocab else default_vocabs(session)
    indexes = _open_with_progress(session, vocabs, params, rebuild)
    notes = [ix.message for ix in indexes if ix.message] + _caveats(model, groups, indexes, flag_rate_)
    for message in notes:
        console.note(prefix + message)
    rows: list[tuple[str, Any]] = []
    if all_texts:
        found = text_neighbours(session, all_texts, vocabs, k, indexes=indexes, truncate=truncate)
        labels = [g for g, items in groups.items() for _ in items]
        rows += list(zip(labels, found, strict=True))
    if image:
        pixels = load_query_images(session, list(image))
        rows += [
            (IMAGES_GROUP, r)
            for r in image_neighbours(session, pixels, [str(p) for p in image], vocabs, k, indexes=indexes)
        ]
    rates = _group_rates(rows) if flag_rate_ else None
    return _Answer(rows, rates, _json_payload(session, k, indexes, rows, rates, notes))


def _show_comparison(answers: dict[str, _Answer], k: int, flag_rate_: bool, as_json: bool, csv_path: Path | None):
    """Several models' answers: one table per query with a column block per model (or the flag rates
    with a model column); --json keyed by model spec; --csv with a leading model column."""
    from probe.plugin import console

    if csv_path is not None:
        from probe.plugin import atomic_write_text

        atomic_write_text(csv_path, _csv_text_models({spec: a.rows for spec, a in answers.items()}))
        console.note(f"Wrote {csv_path}")
    if as_json:
        console.print_json({spec: a.payload for spec, a in answers.items()})
    elif flag_rate_:
        _print_rates_models(console, answers, k)
    else:
        _print_neighbours_models(console, answers)


def _print_neighbours_models(console, answers: dict[str, _Answer]) -> None:
    """Per query one table: rank, then each model's word and cosine (and flag category, where any
    model's neighbours of the query hold a flagged word)."""
    from rich.text import Text

    specs = list(answers)
    first = answers[specs[0]].rows
    for i, (_, query) in enumerate(first):
        results = [answers[spec].rows[i][1] for spec in specs]
        flags = any(n.flagged for r in results for n in r.neighbours)
        block = ("cosine", "flagged") if flags else ("cosine",)
        columns = ["#"] + [c for spec in specs for c in (spec, *block)]
        table_rows = []
        for rank in range(max(len(r.neighbours) for r in results)):
            row: list[Any] = [str(rank + 1)]
            for result in results:
                if rank >= len(result.neighbours):
                    row += [""] * (1 + len(block))
                    continue
                n = result.neighbours[rank]
                style = "bold red" if n.flagged else ""
                row += [Text(n.word, style=style), f"{n.score:.3f}"]
                row += [Text(n.category or "", style=style)] if flags else []
            table_rows.append(row)
        console.print_table(columns, table_rows, title=f"{query.query} — {len(specs)} models")


def _print_rates_models(console, answers: dict[str, _Answer], k: int) -> None:
    """Flagged shares per query with one column per model, then per group one row per model."""
    specs = list(answers)
    first = answers[specs[0]].rows
    per_query = []
    for i, (group, result) in enumerate(first):
        shares = []
        for spec in specs:
            rates = answers[spec].rates or {}
            shares.append(f"{rates[group].per_query[answers[spec].rows[i][1].query]:.0%}")
        per_query.append([group, result.query, *shares])
    console.print_table(
        ["group", "query", *specs], per_query, title=f"Flagged share of the top-{k} neighbours, per model"
    )
    summary = [
        [spec, g, str(len(r.per_query)), f"{r.flagged}/{r.total}", f"{r.overall:.1%}"]
        for spec in specs
        for g, r in (answers[spec].rates or {}).items()
    ]
    console.print_table(["model", "group", "queries", "flagged / neighbours", "rate"], summary, title="Per group")


def _csv_text_models(rows_by_model: dict[str, list]) -> str:
    """The --csv rows of several models: model, then the one-model columns."""
    lines = []
    for i, (spec, rows) in enumerate(rows_by_model.items()):
        body = _csv_text(rows).splitlines()
        if i == 0:
            lines.append("model," + body[0])
        lines += [_csv_field(spec) + "," + line for line in body[1:]]
    return "\n".join(lines) + "\n"


def _csv_field(text: str) -> str:
    import csv
    import io

    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([text])
    return buffer.getvalue()


def _group_name(path: Path, taken: dict) -> str:
    """A file's group name: its stem, made unique."""
    name, n = path.stem, 2
    while name in taken or name in (ARGS_GROUP, IMAGES_GROUP):
        name, n = f"{path.stem}-{n}", n + 1
    return name


def _open_with_progress(session, vocabs: list[str], params, rebuild: bool) -> list[VocabIndex]:
    """Open each vocabulary's index; a progress bar appears only when one is actually being built."""
    from probe.plugin import console
    from probe_neighbours.index import open_index
    from probe_neighbours.vocabularies import load_vocab

    indexes = []
    for name in dict.fromkeys(vocabs):
        v = load_vocab(name)
        with contextlib.ExitStack() as stack:
            bar: list = []

            def advance(n: int, v=v, stack=stack, bar=bar) -> None:
                if not bar:
                    bar.append(stack.enter_context(console.progress(f"Embedding {v.name}", total=len(v.words))))
                bar[0](n)

            indexes.append(open_index(session, v, params, rebuild, progress=advance))
    return indexes


def _group_rates(rows: list) -> dict:
    """FlagRate per group, plus 'all' over every query."""
    from probe_neighbours.query import flag_rate

    groups: dict[str, list] = {}
    for group, result in rows:
        groups.setdefault(group, []).append(result)
    rates = {g: flag_rate(rs) for g, rs in groups.items()}
    if len(groups) > 1:
        rates["all"] = flag_rate([r for _, r in rows])
    return rates


def _caveats(model: str, groups: dict[str, list[str]], indexes: list, flag_rate: bool) -> list[str]:
    """What the answer cannot say: texts with words the built-in model never saw, and flag rates
    that are 0% or 100% whatever the model does (no flagged word, or only flagged words, to find)."""
    from probe.world.vocab import builtin_text_notes

    notes = builtin_text_notes(model, [t for texts in groups.values() for t in texts])
    if flag_rate:
        from probe_neighbours.query import flag_rate_caveat

        caveat = flag_rate_caveat([ix.vocab for ix in indexes])
        notes += [caveat] if caveat else []
    return notes


def _json_payload(session, k: int, indexes: list, rows: list, rates: dict | None, notes: list[str]) -> dict:
    payload = {
        "model": session.describe(),
        "k": k,
        "vocabs": [
            {
                "name": ix.vocab.name,
                "words": len(ix.vocab.words),
                "source": ix.vocab.source,
                "index": ix.params.kind,
                "status": ix.status,
                "recall_at_10": ix.recall_at_10,
            }
            for ix in indexes
        ],
        "notes": notes,
        "results": [{"group": g, **r.as_dict()} for g, r in rows],
    }
    if rates is not None:
        payload["flag_rate"] = {g: rate.as_dict() for g, rate in rates.items()}
    return payload


def _csv_text(rows: list) -> str:
    """group, query, rank, word, cosine, vocab, flagged (its category, or empty): one row per neighbour."""
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["group", "query", "rank", "word", "cosine", "vocab", "flagged"])
    for group, result in rows:
        writer.writerows(
            [group, result.query, rank, n.word, n.score, n.vocab, n.category or ""]
            for rank, n in enumerate(result.neighbours, 1)
        )
    return buffer.getvalue()


def _print_neighbours(console, rows: list, model: str) -> None:
    from rich.text import Text

    for _, result in rows:
        table_rows = []
        for rank, n in enumerate(result.neighbours, 1):
            style = "bold red" if n.flagged else ""
            table_rows.append(
                [str(rank), Text(n.word, style=style), f"{n.score:.3f}", n.vocab, Text(n.category or "", style=style)]
            )
        console.print_table(["#", "word", "cosine", "vocab", "flagged"], table_rows, title=f"{result.query} — {model}")


def _print_rates(console, rows: list, rates: dict, k: int) -> None:
    from rich.text import Text

    table_rows = []
    for group, result in rows:
        flagged = [n.word for n in result.neighbours if n.flagged]
        share = rates[group].per_query[result.query]
        table_rows.append(
            [group, result.query, Text(f"{share:.0%}", style="bold red" if flagged else ""), ", ".join(flagged)]
        )
    console.print_table(
        ["group", "query", "flagged", "flagged words"], table_rows, title=f"Flagged share of the top-{k} neighbours"
    )
    summary = [[g, str(len(r.per_query)), f"{r.flagged}/{r.total}", f"{r.overall:.1%}"] for g, r in rates.items()]
    console.print_table(["group", "queries", "flagged / neighbours", "rate"], summary, title="Per group")
