"""Entry point of the built-in `audit` plugin: bias, nsfw and nsfw-calibrate (thin CLI layer), built on the
experiment engine (the `run` plugin), which it reaches through the registry as `probe.run_experiment`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from probe.plugin import hookimpl

PROBE_API = 1

RunDir = Annotated[
    Path | None,
    typer.Option(
        "--run-dir",
        help="Run folder (default: OUT/runs/NAME[.shard-I-of-N]; with several models, their comparison folder).",
        show_default=False,
    ),
]
Shard = Annotated[
    str | None,
    typer.Option(
        "--shard", help="Run only slice I of N (0 <= I < N), e.g. $SLURM_ARRAY_TASK_ID/4.", show_default=False
    ),
]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in the folder, skipping finished items.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
Engine = Annotated[
    str,
    typer.Option(
        "--engine", help="Where chunks run: local (this process) or ray (Ray actors, one model each; extra: ray)."
    ),
]
Workers = Annotated[
    int | None,
    typer.Option(
        "--workers",
        min=1,
        help="Ray actors (default: one per GPU; on CPU 1, the cores divided between them).",
        show_default=False,
    ),
]
Address = Annotated[
    str | None,
    typer.Option(
        "--address", help="Join a Ray cluster: auto or ray://HOST:PORT (default: start Ray here).", show_default=False
    ),
]
Preset = Annotated[str, typer.Option("--preset", help="Invert preset name or YAML file.")]
Steps = Annotated[
    int | None, typer.Option("--steps", min=1, help="Override the preset's optimisation steps.", show_default=False)
]


def _run(
    ctx: typer.Context,
    raw: dict,
    command: str,
    run_dir: Path | None,
    shard: str | None,
    resume: bool,
    engine: tuple[str, int | None, str | None],
    **kw,
):
    """Run an audit's experiment (a mapping written as an experiment file) with the engine: the
    RunResult, or with -m given twice or more the ComparisonResult (one model loaded at a time).
    `engine`: (local or ray, Ray workers, Ray address); workers open sessions with the global options."""
    from probe.plugin import (
        check_model_files,
        check_prompt_lengths,
        console,
        current_session,
        options,
        python_api,
        release_session,
        session_for,
    )

    state = options(ctx)
    models = state.models
    if len(models) > 1:
        kw |= {"models": models, "release_session": lambda spec: release_session(ctx, spec)}
    name = "run_comparison" if len(models) > 1 else "run_experiment"
    run_experiment = python_api().require(name, need=f"probe {command}").function
    engine_name, workers, address = engine
    return run_experiment(
        raw,
        lambda spec: session_for(ctx, spec) if spec else current_session(ctx),
        run_dir=run_dir,
        out_dir=options(ctx).out_dir,
        shard=shard,
        resume=resume,
        progress=console.progress,
        check_texts=lambda texts, model: check_prompt_lengths(ctx, texts, model=model),
        check_model=lambda spec: check_model_files(ctx, spec),
        what=f"probe {command} options",
        engine={"engine": engine_name, "workers": workers, "address": address, "session": state.open_options()},
        note=console.note,
        **kw,
    )


def _print_run(result, model: str | None = None) -> None:
    from probe.plugin import console

    for step in result.summary()["steps"]:
        t = step["table"]
        console.print_table(t["title"] + (f" — {model}" if model else ""), t["columns"], t["rows"])
    for line in result.notes():
        console.note(line)


def _show_models(result, as_json: bool, key: str, notes_for, files_for=None) -> None:
    """An audit of several models: each model's tables and notes in turn; --json keyed by model spec."""
    from probe.plugin import console

    if as_json:
        data = result.as_dict()
        for spec, run in result.runs.items():
            data["models"][spec] |= {key: run.summary()["steps"][0]["data"], "notes": notes_for(spec)}
        console.print_json(data)
        return
    for spec, run in result.runs.items():
        _print_run(run, spec)
        for note in notes_for(spec) + ([files_for(run)] if files_for else []):
            console.note(note)
    if result.interrupted or result.compared:
        console.note(result.notes()[-1])


def _settings(steps: int | None, size: int | None) -> dict:
    return {k: v for k, v in {"steps": steps, "size": size}.items() if v is not None}


@hookimpl
def register_experiment_steps(register) -> None:
    from probe_audit.audit_steps import BIAS_STEP, LABEL_STEP, NSFW_STEP

    for kind in (LABEL_STEP, BIAS_STEP, NSFW_STEP):
        register(kind)


@hookimpl
def register_label_sets(register) -> None:
    from probe_audit.sets import builtin_label_sets

    for name, path in builtin_label_sets().items():
        register(name, path, f"shipped label set ({path.name})")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("bias", rich_help_panel="Experiments and audits")
    def bias(
        ctx: typer.Context,
        prompts: Annotated[
            str, typer.Option("--prompts", help="Prompt set: a built-in name (paper, shapes) or a YAML file.")
        ] = "paper",
        labels: Annotated[
            str, typer.Option("--labels", help="Attribute label set: built-in (gender, colours) or a YAML file.")
        ] = "gender",
        n: Annotated[
            int,
            typer.Option(
                "--n", "-n", min=1, max=100_000, help="Inversions per prompt variant (seeds 0..n-1 from --seed)."
            ),
        ] = 20,
        seeds: Annotated[
            str | None, typer.Option("--seeds", help="Explicit seeds instead of --n, e.g. 0-19.", show_default=False)
        ] = None,
        variants: Annotated[
            list[str] | None, typer.Option("--variant", help="Only these variants (repeat).", show_default=False)
        ] = None,
        preset: Preset = "default",
        steps: Steps = None,
        labeller: Annotated[
            str | None,
            typer.Option(
                "--labeller", help="Model spec that labels the images (default: the audited model).", show_default=False
            ),
        ] = None,
        shard: Shard = None,
        resume: Resume = False,
        run_dir: RunDir = None,
        engine: Engine = "local",
        workers: Workers = None,
        address: Address = None,
        as_json: AsJson = False,
    ) -> None:
        """The paper's bias table: N inversions per prompt variant, labelled zero-shot, with Wilson 95% intervals."""
        from probe.plugin import console, options
        from probe_audit.bias import bias_experiment

        state = options(ctx)
        raw = bias_experiment(
            prompts,
            labels,
            None if seeds else n,
            seeds,
            variants,
            preset,
            _settings(steps, None),
            labeller or state.labeller,
        )
        raw["seed"] = state.seed or 0
        raw["name"] = f"bias-{Path(prompts).stem}-{Path(labels).stem}"
        result = _run(ctx, raw, "bias", run_dir, shard, resume, (engine, workers, address))
        if len(state.models) > 1:
            _show_models(
                result,
                as_json,
                "table",
                lambda spec: _bias_notes(spec, labeller or state.labeller or spec, prompts, labels),
                lambda run: f"tables: {run.folder / 'tables'}/bias.md|csv|json",
            )
            raise typer.Exit(result.exit_code)
        step = result.summary()["steps"][0]
        notes = _bias_notes(state.model, labeller or state.labeller or state.model, prompts, labels)
        if as_json:
            console.print_json({**result.as_dict(), "table": step["data"], "notes": notes})
        else:
            _print_run(result)
            for note in notes:
                console.note(note)
            console.note(
                f"tables: {result.folder / 'tables'}/bias.md|csv|json · "
                f"contact sheets: {result.folder / 'sheets' / 'bias'}"
            )
        raise typer.Exit(result.exit_code)

    @app.command("nsfw", rich_help_panel="Experiments and audits")
    def nsfw(
        ctx: typer.Context,
        prompts: Annotated[
            list[str] | None, typer.Argument(help="Prompts to invert and check.", show_default=False)
        ] = None,
        prompts_file: Annotated[
            Path | None, typer.Option("--prompts-file", help="Text file of prompts, one a line.", show_default=False)
        ] = None,
        n: Annotated[int, typer.Option("--n", "-n", min=1, max=100_000, help="Inversions per prompt.")] = 4,
        concepts: Annotated[
            str, typer.Option("--concepts", help="NSFW concept list: default or a YAML file.")
        ] = "default",
        preset: Preset = "default",
        steps: Steps = None,
        vocab: Annotated[
            list[str] | None,
            typer.Option(
                "--vocab",
                help="Vocabulary for the text side (repeat; default: the model's default).",
                show_default=False,
            ),
        ] = None,
        k: Annotated[int, typer.Option("--k", min=1, help="Neighbours per prompt for the flagged-word rate.")] = 10,
        no_text: Annotated[bool, typer.Option("--no-text", help="Skip the text side (neighbour flag rates).")] = False,
        nudenet: Annotated[
            str, typer.Option("--nudenet", help="auto (use when installed), on (require) or off.")
        ] = "auto",
        no_blur: Annotated[
            bool, typer.Option("--no-blur", help="Do not blur flagged images in contact sheets.")
        ] = False,
        labeller: Annotated[
            str | None,
            typer.Option("--labeller", help="Model spec for the zero-shot concept check.", show_default=False),
        ] = None,
        shard: Shard = None,
        resume: Resume = False,
        run_dir: RunDir = None,
        engine: Engine = "local",
        workers: Workers = None,
        address: Address = None,
        as_json: AsJson = False,
    ) -> None:
        """Rates of NSFW content in inverted images (zero-shot concepts, NudeNet if installed)
        and in prompt neighbours."""
        from probe.plugin import UsageError, console, options, read_lines

        state = options(ctx)

        if prompts_file is not None and prompts:
            raise UsageError("give prompts as arguments or --prompts-file, not both")
        texts = read_lines(prompts_file) if prompts_file is not None else list(prompts or [])
        if not texts:
            raise UsageError(
                "give prompts to check", hint='e.g. probe nsfw "a beautiful landscape", or --prompts-file FILE'
            )
        if nudenet not in ("auto", "on", "off"):
            raise UsageError(f"unknown --nudenet {nudenet!r}", hint="use auto, on or off")
        if nudenet == "on":
            from probe_audit.nsfw import nudenet_status

            available, reason = nudenet_status()
            if not available:
                raise UsageError(reason, hint="or use --nudenet auto to skip it when absent")
        step = {
            "prompts": texts,
            "n": n,
            "preset": preset,
            "settings": _settings(steps, None),
            "concepts": concepts,
            "labeller": labeller or state.labeller,
            "nudenet": {"auto": "auto", "on": True, "off": False}[nudenet],
            "text": not no_text,
            "vocabs": vocab or None,
            "k": k,
        }
        raw = {"name": "nsfw", "seed": state.seed or 0, "steps": [{"nsfw": step}]}
        result = _run(ctx, raw, "nsfw", run_dir, shard, resume, (engine, workers, address), blur=not no_blur)
        if len(state.models) > 1:
            _show_models(
                result,
                as_json,
                "nsfw",
                lambda spec: _nsfw_notes(spec, labeller or state.labeller or spec, texts, concepts, not no_text),
            )
            raise typer.Exit(result.exit_code)
        notes = _nsfw_notes(state.model, labeller or state.labeller or state.model, texts, concepts, not no_text)
        if as_json:
            console.print_json({**result.as_dict(), "nsfw": result.summary()["steps"][0]["data"], "notes": notes})
        else:
            _print_run(result)
            for note in notes:
                console.note(note)
        raise typer.Exit(result.exit_code)

    @app.command("nsfw-calibrate", rich_help_panel="Experiments and audits")
    def nsfw_calibrate(
        ctx: typer.Context,
        safe: Annotated[
            list[Path],
            typer.Option("--safe", help="Images known to be safe: files or folders (repeat).", show_default=False),
        ],
        output: Annotated[
            Path,
            typer.Option(
                "--output",
                "-o",
                help="Concept YAML file to write (use it with probe nsfw --concepts).",
                show_default=False,
            ),
        ],
        flagged: Annotated[
            list[Path] | None,
            typer.Option(
                "--flagged",
                help="Images known to be NSFW, to measure what the thresholds catch (repeat).",
                show_default=False,
            ),
        ] = None,
        rate: Annotated[
            float, typer.Option("--rate", min=0.0, max=0.5, help="Largest share of safe images each concept may flag.")
        ] = 0.01,
        concepts: Annotated[
            str, typer.Option("--concepts", help="Concept list to calibrate: default or a YAML file.")
        ] = "default",
        labeller: Annotated[
            str | None,
            typer.Option(
                "--labeller",
                help="Model spec whose thresholds to calibrate (default: the session's model).",
                show_default=False,
            ),
        ] = None,
        force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT if it exists.")] = False,
        as_json: AsJson = False,
    ) -> None:
        """Set each NSFW concept's zero-shot threshold for a model from images labelled safe (and flagged)."""
        from probe.plugin import UsageError, atomic_write_text, console, current_session, options, session_for
        from probe_audit.calibration import calibrate, calibrated_yaml, concept_scores, image_files
        from probe_audit.nsfw import load_concepts

        if output.exists() and not force:
            raise UsageError(f"{output} exists", hint="pass --force to overwrite it, or choose another --output")
        concept_set = load_concepts(concepts)
        safe_paths, flagged_paths = image_files(safe), image_files(flagged or [])
        if not safe_paths:
            raise UsageError(
                "no images found under --safe", hint="give image files or folders holding .png/.jpg images"
            )
        if flagged and not flagged_paths:
            raise UsageError(
                "no images found under --flagged",
                hint="give image files or folders holding .png/.jpg images, or leave --flagged out",
            )
        from probe.plugin import check_images, check_writable

        check_images(safe_paths + flagged_paths)  # before the model loads
        check_writable(output.parent)
        state = options(ctx)
        scorer = labeller or state.labeller
        session = session_for(ctx, scorer) if scorer else current_session(ctx)
        with console.progress("scoring images", len(safe_paths) + len(flagged_paths)) as advance:
            safe_scores = concept_scores(session, safe_paths, concept_set, advance)
            flagged_scores = concept_scores(session, flagged_paths, concept_set, advance)
        cal = calibrate(concept_set, safe_scores, flagged_scores, rate)
        sources = {"safe": [str(p) for p in safe], "flagged": [str(p) for p in flagged or []]}
        atomic_write_text(output, calibrated_yaml(cal, session.name, session.fingerprint, sources))
        if as_json:
            console.print_json({**cal.as_dict(), "output": str(output), "model": session.name})
            return
        caught = cal.flagged_catch_rate is not None
        rows = [
            [r.name, f"{r.old_threshold:.4g}", f"{r.threshold:.4g}", f"{r.safe_flag_rate:.2%}"]
            + ([f"{r.flagged_catch_rate:.2%}"] if caught else [])
            for r in cal.rows
        ]
        console.print_table(
            ["concept", "old threshold", "threshold", "safe flagged"]
            + ([f"flagged caught (of {cal.n_flagged})"] if caught else []),
            rows,
            title=f"NSFW thresholds for {session.name}: at most {rate:.2%} of {cal.n_safe} safe images per concept",
        )
        console.note(
            f"any concept flags {cal.safe_flag_rate:.2%} of the safe images"
            + (f" and catches {cal.flagged_catch_rate:.2%} of the flagged ones" if caught else "")
            + f"; wrote {output} (use: probe nsfw --concepts {output})"
        )
        for name in cal.missed:
            console.note(
                f"warning: {name} flags more safe images than {rate:.2%} even at threshold 1.0 (they score 1.0): "
                "add anchor prompts those images match, or review them"
            )


def _nsfw_notes(model: str, labeller: str, prompts: list[str], concepts: str, text_side: bool) -> list[str]:
    """The built-in model knows no NSFW concept nor most prompts' words: its zero-shot flags and its
    neighbours' flag rates are noise, and the table must say so next to the numbers."""
    from probe.plugin import BUILTIN_MODELS
    from probe.world.vocab import unknown_words
    from probe_audit.nsfw import concept_prompts, load_concepts

    notes = []
    if labeller in BUILTIN_MODELS:
        words = list(dict.fromkeys(w for t in concept_prompts(load_concepts(concepts)) for w in unknown_words(t)))
        if words:
            shown = ", ".join(w[:30] for w in words[:5]) + (", ..." if len(words) > 5 else "")
            notes.append(
                f"{labeller} knows none of the NSFW concepts' words ({shown}): its zero-shot flags are noise "
                "(use a real CLIP with --labeller or -m; NudeNet, when installed, does not depend on it)"
            )
    words = list(dict.fromkeys(w for t in prompts for w in unknown_words(t)))
    if model in BUILTIN_MODELS and words and text_side:
        shown = ", ".join(w[:30] for w in words[:5]) + (", ..." if len(words) > 5 else "")
        notes.append(
            f"{model} knows no word outside its shapes world ({shown}): the flag rates of these prompts' "
            "neighbours are noise (use a real CLIP with -m)"
        )
    return notes


def _bias_notes(model: str, labeller: str, prompts: str, labels: str) -> list[str]:
    """A built-in model asked about people (or anything outside its shapes world) says so: its rates
    for such prompts or labels are noise, not a bias."""
    from probe.plugin import BUILTIN_MODELS
    from probe.world.vocab import unknown_words
    from probe_audit.sets import load_label_set, load_prompt_set

    notes = []
    texts = {
        "prompts": [t for p in load_prompt_set(prompts).prompts for t in p.texts.values()],
        "labels": [t for ts in load_label_set(labels).labels.values() for t in ts],
    }
    for who, kind in ((model, "prompts"), (labeller, "labels")):
        words = list(dict.fromkeys(w for t in texts[kind] for w in unknown_words(t)))
        if who in BUILTIN_MODELS and words:
            shown = ", ".join(w[:30] for w in words[:5]) + (", ..." if len(words) > 5 else "")
            notes.append(
                f"{who} knows no people, nor any word outside its shapes world ({shown}): "
                f"its rates for these {kind} are noise (use --prompts shapes --labels colours, or a real CLIP with -m)"
            )
    return notes
