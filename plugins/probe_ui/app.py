"""The web page of `probe ui`: one tab per probe, each calling the probe functions the command line
calls (reached through `python_api()`, as `probe.<name>`), on one shared model session.

Imported only by `probe ui` (and `probe.ui_app`): it imports the web framework, which `probe --help`
must never load.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import Any

from probe.plugin import ProbeError, UsageError, python_api
from probe_ui import views

for _key, _value in views.OFFLINE_ENV.items():  # before gradio is imported: no telemetry, no update check
    os.environ.setdefault(_key, _value)

import gradio as gr  # noqa: E402  (after the environment above)

INVERT_QUEUE = "invert"  # one inversion batch at a time: the model and its accelerator are shared
PREVIEW_EVERY = 5  # steps between live images (and the last step), fewer for a short run
PRESETS = ["default", "paper"]
SCENES_SHOWN = 24  # world scenes shown in the Shuffle-test tab (all of them are tested)


class SharedSession:
    """The one model of the page, loaded on first use by the accessor the commands use, once, whichever
    tab or browser asks first."""

    def __init__(self, source: Any) -> None:
        self._source, self._lock, self._session = source, threading.Lock(), None

    def __call__(self) -> Any:
        with self._lock:
            if self._session is None:
                self._session = self._source() if callable(self._source) else self._source
            return self._session


def _probe(name: str) -> Callable[..., Any]:
    """A probe function as `probe.<name>` reaches it (a plugin may have replaced the built-in one)."""
    return python_api().require(name, need=f"probe.{name}").function


def one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A probe's error shows in the page as the command line's one line, never a traceback."""

    def shown(exc: BaseException) -> gr.Error:
        if isinstance(exc, (ProbeError, gr.Error)):
            return exc if isinstance(exc, gr.Error) else gr.Error(views.error_line(exc), print_exception=False)
        return gr.Error(f"Error: {type(exc).__name__}: {exc} (a bug: please report it)", print_exception=False)

    if _is_generator(fn):

        @wraps(fn)
        def streamed(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise shown(exc) from None

        return streamed

    @wraps(fn)
    def called(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise shown(exc) from None

    return called


def _is_generator(fn: Callable[..., Any]) -> bool:
    import inspect

    return inspect.isgeneratorfunction(fn)


def theme() -> gr.themes.Base:
    """The default look with the system's fonts: no web font is fetched."""
    return gr.themes.Default(font=list(views.SYSTEM_FONTS), font_mono=list(views.MONO_FONTS))


def build_app(session: Any, out_dir: Path | str = "probe-out", *, title: str = "clip-probe") -> gr.Blocks:
    """The page for one model session (a Session, or a function returning the shared one).

    Files are written under `out_dir` as the command line writes them (invert/, runs/); launch with
    `launch(app, out_dir)` so that only that folder is served.
    """
    out = Path(out_dir)
    os.environ.setdefault("GRADIO_TEMP_DIR", str(upload_folder(out)))  # uploads and served copies stay in it
    shared = SharedSession(session)
    stops: dict[str, threading.Event] = {}
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}\nLook inside the loaded CLIP model: every tab uses the one model in memory.")
        with gr.Tabs():
            with gr.Tab("Invert", id="invert"):
                _invert_tab(shared, out, stops)
            with gr.Tab("Neighbours", id="neighbours"):
                _neighbours_tab(shared)
            with gr.Tab("Shuffle test", id="shuffle"):
                _shuffle_tab(shared)
            with gr.Tab("Score", id="score"):
                _score_tab(shared)
            with gr.Tab("Runs", id="runs"):
                _runs_tab(out, shared)
            with gr.Tab("Model", id="model"):
                _model_tab(shared)
    app.queue(default_concurrency_limit=1)
    return app


def launch(
    app: gr.Blocks,
    out_dir: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    block: bool = True,
) -> str:
    """Serve the page; only files under `out_dir` (where its results and uploads go) are served.
    Returns the local URL (with block=False the server runs in a background thread)."""
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    _, url, _ = app.launch(
        server_name=host,
        server_port=port,
        share=share,
        allowed_paths=[str(out)],
        prevent_thread_lock=not block,
        quiet=True,
        footer_links=[],
        theme=theme(),
        show_error=True,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
    )
    return str(url)


def upload_folder(out_dir: Path | str) -> Path:
    """Where the framework keeps uploads and served copies: inside the output folder."""
    return Path(out_dir).resolve() / ".ui-files"


# ---------------------------------------------------------------- tabs


def _invert_tab(session: SharedSession, out: Path, stops: dict[str, threading.Event]) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            prompts = gr.Textbox(
                label="Prompts (one a line; 'a panda | a mad scientist:0.5 | blurry:-0.3' blends with weights)",
                lines=3,
                value="a red star",
                elem_id="invert-prompts",
            )
            seeds = gr.Textbox(label="Seeds (e.g. 0-3 or 0,5)", value="0", elem_id="invert-seeds")
            preset = gr.Dropdown(PRESETS, value="default", label="Preset", allow_custom_value=False)
            with gr.Row():
                steps = gr.Textbox(label="Steps", placeholder="the preset's", elem_id="invert-steps")
                size = gr.Textbox(label="Start size", placeholder="the preset's")
            with gr.Row():
                copies = gr.Textbox(label="Augmented copies", placeholder="the preset's")
                lr = gr.Textbox(label="Learning rate", placeholder="the preset's")
                tv = gr.Textbox(label="TV prior weight", placeholder="the preset's")
            with gr.Row():
                go = gr.Button("Invert", variant="primary", elem_id="invert-go")
                stop = gr.Button("Stop (keeps what finished)", variant="stop", elem_id="invert-stop")
        with gr.Column(scale=2):
            status = gr.Textbox(label="Progress", interactive=False, elem_id="invert-status")
            live = gr.Gallery(
                label="Images as they form",
                columns=4,
                fit_columns=False,  # a fixed grid of four a row: one image keeps its cell, not the whole row
                height=260,
                format="png",
                allow_preview=False,
                object_fit="contain",
                elem_id="invert-live",
            )
            sheet = gr.Image(label="Contact sheet", type="filepath", interactive=False, elem_id="invert-sheet")
            table = gr.Dataframe(
                headers=views.INVERT_COLUMNS, label="Images", interactive=False, elem_id="invert-table"
            )
            notes = gr.Textbox(label="Notes", interactive=False, lines=2)
            files = gr.File(label="PNG files and sidecars", file_count="multiple", elem_id="invert-files")

    @one_line_errors
    def run(prompts_text, seeds_text, preset_name, n_steps, n_size, n_copies, rate, tv_weight, request: gr.Request):
        chosen = views.prompt_lines(prompts_text)
        seed_values = views.seed_list(seeds_text)
        knobs, assignments = views.invert_knobs(n_steps, n_size, n_copies, rate, tv_weight)
        stop_event = stops.setdefault(_session_id(request), threading.Event())
        stop_event.clear()
        yield from _stream_inversion(
            session(), out / "invert", chosen, seed_values, preset_name, knobs, assignments, stop_event
        )

    def request_stop(request: gr.Request) -> str:
        stops.setdefault(_session_id(request), threading.Event()).set()
        return "stopping after this step…"

    go.click(
        run,
        [prompts, seeds, preset, steps, size, copies, lr, tv],
        [status, live, sheet, table, notes, files],
        concurrency_limit=1,
        concurrency_id=INVERT_QUEUE,
        show_progress="full",
    )
    stop.click(request_stop, None, status, queue=False)


def _session_id(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", None) or "local")


def _stream_inversion(
    model: Any,
    folder: Path,
    prompts: list[str],
    seeds: list[int],
    preset: str,
    knobs: dict[str, Any],
    assignments: list[str],
    stop: threading.Event,
) -> Iterator[tuple[Any, ...]]:
    """Run `probe.invert_into_folder` in a worker thread and yield the page's outputs: live images
    every few steps, then the saved files. Closing the stream (a browser gone) stops the job."""
    from probe.files.images import to_pil

    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    total = {"steps": 0}

    def on_start(todo: int, asked: int) -> None:
        events.put(("status", f"{todo} of {asked} image(s) to invert (the others already finished)"))

    def on_preview(step: int, items: list[tuple[str, int]], images: Any, cosine: Any) -> None:
        shown = [
            (to_pil(image), views.preview_caption(p, s, step, total["steps"] or step, float(c)))
            for (p, s), image, c in zip(items, images, cosine.tolist(), strict=True)
        ]
        events.put(("preview", (step, shown, float(cosine.mean()))))

    def work() -> None:
        try:
            run = _probe("invert_into_folder")(
                model,
                folder,
                prompts,
                seeds,
                preset=preset,
                knobs=knobs,
                assignments=assignments,
                on_preview=on_preview,
                preview_every=max(1, min(PREVIEW_EVERY, int(knobs.get("steps") or 10 * PREVIEW_EVERY) // 2)),
                should_stop=stop.is_set,
                on_start=on_start,
            )
            events.put(("done", run))
        except BaseException as exc:
            events.put(("error", exc))

    nothing = gr.update()
    worker = threading.Thread(target=work, name="probe-ui-invert", daemon=True)
    worker.start()
    finished = False
    try:
        while True:
            kind, payload = events.get()
            if kind == "status":
                yield payload, nothing, nothing, nothing, nothing, nothing
            elif kind == "preview":
                step, shown, cosine = payload
                yield f"step {step} · cos {cosine:.3f}", shown, nothing, nothing, nothing, nothing
            elif kind == "error":
                finished = True
                raise payload
            else:
                finished = True
                run = payload
                final = [(r["png"], f"{r['prompt']} · seed {r['seed']} · {r['status']}") for r in run.rows if r["png"]]
                state = "stopped" if run.interrupted else "finished"
                yield (
                    f"{state}: {len(final)} image(s) in {folder}",
                    final,
                    str(run.sheet) if run.sheet else None,
                    views.invert_rows(run.rows),
                    "\n".join(views.invert_notes(run)),
                    views.download_files(run.rows),
                )
                return
    finally:
        if not finished:  # the page went away mid-run: stop after this step, keep what is saved
            stop.set()
        worker.join()


def _neighbours_tab(session: SharedSession) -> None:
    from probe.plugin import vocabularies

    names = sorted(vocabularies())
    with gr.Row():
        with gr.Column(scale=1):
            texts = gr.Textbox(label="Texts (one a line)", lines=2, value="star", elem_id="neighbours-text")
            image = gr.File(label="…or an image", file_types=["image"], elem_id="neighbours-image")
            vocabs = gr.Dropdown(
                names, multiselect=True, label="Vocabularies (empty: the model's default)", elem_id="neighbours-vocab"
            )
            k = gr.Slider(1, 50, value=10, step=1, label="Neighbours (k)")
            rate = gr.Checkbox(
                label="Flag rate: the share of flagged words in each text's top-k (e.g. a list of names, one a line)",
                elem_id="neighbours-flag-rate",
            )
            go = gr.Button("Find neighbours", variant="primary", elem_id="neighbours-go")
        with gr.Column(scale=2):
            table = gr.Dataframe(
                headers=views.NEIGHBOUR_COLUMNS, label="Nearest words", interactive=False, elem_id="neighbours-table"
            )
            rates = gr.Dataframe(
                headers=views.FLAG_RATE_COLUMNS,
                label="Flagged share of the top-k neighbours",
                interactive=False,
                visible=False,
                elem_id="neighbours-rates",
            )
            notes = gr.Textbox(label="Notes", interactive=False, lines=2, elem_id="neighbours-notes")

    @one_line_errors
    def find(text: str, upload: str | None, chosen: list[str] | None, count: float, with_rate: bool):
        from probe.world.vocab import builtin_text_notes

        queries = [t.strip() for t in (text or "").splitlines() if t.strip()]
        if not queries and not upload:
            raise UsageError("nothing to look up", hint="type a text or upload an image")
        model = session()
        images = None
        if upload:
            from probe.files.images import load_image

            images = model.resize(load_image(Path(upload)))  # the command line's size limit applies
        result = _probe("neighbours")(model, queries, vocabs=chosen or None, k=int(count), images=images)
        label = {"image 0": f"image {Path(upload).name}"} if upload else {}
        notes_text = builtin_text_notes(model.describe()["model"], queries)
        shares = gr.update(visible=False, value=None)
        if with_rate:  # as `probe neighbours --flag-rate`, over every query of the page
            shares = gr.update(visible=True, value=views.flag_rate_rows(result, result.flag_rate(), label))
            notes_text += result.flag_rate_notes()
        return views.neighbour_rows(result, label), shares, "\n".join(notes_text)

    go.click(find, [texts, image, vocabs, k, rate], [table, rates, notes], concurrency_id="probes")


def _shuffle_tab(session: SharedSession) -> None:
    from probe.world.captions import ORDERED_RELATIONS

    with gr.Row():
        with gr.Column(scale=1):
            source = gr.Radio(
                views.SHUFFLE_SOURCES, value=views.CAPTION_SOURCE, label="Source", elem_id="shuffle-source"
            )
            captions = gr.Textbox(
                label="Captions (one a line)",
                lines=3,
                value="a red star left of a blue circle",
                elem_id="shuffle-captions",
            )
            images = gr.File(
                label="Images, one per caption (optional: P@1 and order blindness)",
                file_types=["image"],
                file_count="multiple",
            )
            with gr.Row(visible=False) as world_row:
                scenes = gr.Textbox(
                    label="World scenes (two objects each, with their true captions)",
                    value=str(views.WORLD_SCENES),
                    elem_id="shuffle-scenes",
                )
                relations = gr.Dropdown(list(ORDERED_RELATIONS), multiselect=True, label="World relations (empty: all)")
            seed = gr.Textbox(label="Seed (perturbations and world scenes)", value="0")
            variants = gr.Textbox(label="Variants per perturbation", value="1")
            go = gr.Button("Run the shuffle test", variant="primary", elem_id="shuffle-go")
        with gr.Column(scale=2):
            summary = gr.Dataframe(label="Summary", interactive=False, elem_id="shuffle-summary")
            notes = gr.Textbox(label="Notes", interactive=False, lines=3, elem_id="shuffle-notes")
            details = gr.Dataframe(
                headers=views.VARIANT_COLUMNS, label="Variants", interactive=False, elem_id="shuffle-variants"
            )
            shown = gr.Gallery(
                label="World scenes",
                columns=8,
                fit_columns=False,
                height="auto",
                object_fit="scale-down",
                format="png",
                allow_preview=False,
                visible=False,
                elem_id="shuffle-scenes-shown",
            )

    @one_line_errors
    def test(
        chosen: str,
        text: str,
        uploads: list[str] | None,
        n_scenes: str | None,
        relation_names: list[str] | None,
        seed_value: float | None,
        n: float | None,
    ):
        world = views.world_request(chosen, n_scenes, relation_names, uploads)
        seed_number = views.whole_number(seed_value, "seed", 0) or 0
        pixels: Any = None
        scenes_shown = gr.update(visible=False, value=None)
        if world is not None:  # as `probe shuffle-test --world N [--relation R ...]`
            from probe.files.images import to_pil

            count, wanted = world
            pairs = _probe("world_scenes")(count, seed_number, **({"relations": wanted} if wanted else {}))
            texts, pixels = pairs.captions, pairs.images
            scenes_shown = gr.update(
                visible=True,
                value=[(to_pil(im), cap) for im, cap in zip(pixels[:SCENES_SHOWN], texts, strict=False)],
                label=f"World scenes (the first {min(count, SCENES_SHOWN)} of {count})",
            )
        else:
            texts = views.prompt_lines(text)
        model = session()
        if uploads:
            from probe.files.images import load_image

            if len(uploads) != len(texts):
                raise UsageError(
                    f"{len(uploads)} image(s) for {len(texts)} caption(s)", hint="give one image per caption, in order"
                )
            pixels = [load_image(Path(u)) for u in uploads]
        report = _probe("shuffle_test")(
            model,
            texts,
            seed=seed_number,
            n_variants=views.whole_number(n, "variants") or 1,
            images=pixels,
        )
        title, columns, rows = report.summary_table(f"Shuffle test — {model.describe()['model']}")
        notes_text = "\n".join(report.notes())
        summary_table = gr.update(value=rows, headers=columns, label=title)
        return summary_table, notes_text, views.variant_rows(report), scenes_shown

    def switched(chosen: str):  # show the chosen source's fields only (uploads dropped for world scenes)
        world = chosen == views.WORLD_SOURCE
        uploads = gr.update(visible=not world, value=None) if world else gr.update(visible=True)
        return gr.update(visible=not world), uploads, gr.update(visible=world)

    source.change(switched, source, [captions, images, world_row], queue=False)
    go.click(
        test,
        [source, captions, images, scenes, relations, seed, variants],
        [summary, notes, details, shown],
        concurrency_id="probes",
    )


def _score_tab(session: SharedSession) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            images = gr.File(label="Images", file_types=["image"], file_count="multiple", elem_id="score-images")
            prompts = gr.Textbox(
                label="Prompts (one a line)", lines=3, value="a red star\na blue circle", elem_id="score-prompts"
            )
            go = gr.Button("Score", variant="primary", elem_id="score-go")
        with gr.Column(scale=2):
            table = gr.Dataframe(label="CLIP cosine (zero-shot probability)", interactive=False, elem_id="score-table")

    @one_line_errors
    def score(uploads: list[str] | None, text: str):
        if not uploads:
            raise UsageError("no images given", hint="upload one or more images")
        result = _probe("score")(session(), [Path(u) for u in uploads], views.prompt_lines(text))
        result.names = [Path(n).name for n in result.names]
        columns, rows = views.score_table(result)
        return gr.update(value=rows, headers=columns)

    go.click(score, [images, prompts], [table], concurrency_id="probes")


def _runs_tab(out: Path, session: SharedSession) -> None:
    with gr.Row():
        runs = gr.Dropdown(views.run_folders(out), label=f"Run folders under {out}", elem_id="runs-list", scale=3)
        refresh = gr.Button("Refresh", scale=0)
        show = gr.Button("Show report", variant="primary", scale=0, elem_id="runs-show")
    with gr.Row():
        experiment = gr.File(label="Run an experiment file (YAML)", file_types=[".yaml", ".yml"], elem_id="runs-yaml")
        with gr.Column(scale=0):
            resume = gr.Checkbox(label="Resume (skip finished items)")
            start = gr.Button("Run it", elem_id="runs-start")
    ran = gr.Textbox(label="Run", interactive=False, elem_id="runs-ran")
    report = gr.HTML(elem_id="runs-report")
    sheets = gr.Gallery(label="Contact sheets", columns=2, format="png")

    def listed():
        return gr.update(choices=views.run_folders(out))

    @one_line_errors
    def shown(name: str | None):
        from probe.files.atomic import atomic_write_text

        folder = views.run_folder(out, name)
        page = _probe("render_report")(folder)
        atomic_write_text(folder / "report.html", page)  # as `probe report` writes it
        return views.framed_report(page), views.sheets_of(folder)

    @one_line_errors
    def run(path: str | None, resuming: bool):
        if not path:
            raise UsageError("no experiment file", hint="upload an experiment YAML file")
        model = session()
        loaded = model.describe()["model"]

        def open_session(spec: str | None) -> Any:  # the page has one model: an experiment for another is refused
            if spec in (None, loaded):
                return model
            raise UsageError(
                f"the experiment is for model {spec!r}; this page has {loaded} loaded",
                hint=f"run it with `probe -m {spec} run FILE`, or start `probe -m {spec} ui`",
            )

        result = _probe("run_experiment")(
            Path(path), open_session, out_dir=out, resume=bool(resuming), source=Path(path).name
        )
        name = str(Path(result.folder).resolve().relative_to(out.resolve()))
        counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
        return gr.update(choices=views.run_folders(out), value=name), f"{name}: {counts}"

    refresh.click(listed, None, runs, queue=False)
    show.click(shown, runs, [report, sheets], concurrency_id="probes")
    start.click(run, [experiment, resume], [runs, ran], concurrency_id=INVERT_QUEUE, concurrency_limit=1)


def _model_tab(session: SharedSession) -> None:
    table = gr.Dataframe(headers=["", ""], label="Loaded model", interactive=False, elem_id="model-table")
    card = gr.Markdown(elem_id="model-card")
    load = gr.Button("Show the model", elem_id="model-show")

    @one_line_errors
    def describe():
        info = session().describe()
        return views.model_rows(info), _card_text(info["model"])

    load.click(describe, None, [table, card], concurrency_id="probes")


def _card_text(model: str) -> str:
    """The built-in model's card (what it knows and its out-of-domain notes); other models carry none."""
    import probe.world
    from probe.world.vocab import BUILTIN_MODELS

    if model not in BUILTIN_MODELS:
        return f"{model}: no model card ships with clip-probe; see its publisher's card."
    card = Path(probe.world.__file__).resolve().parent.parent / "models" / "weights" / "MODEL_CARD.md"
    return card.read_text(encoding="utf-8") if card.is_file() else ""
