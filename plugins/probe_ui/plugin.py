"""Entry point of the built-in `ui` plugin: `probe ui`, a local web page for every probe on the one
loaded model. The web framework (the `ui` extra) is imported only when the command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from probe.plugin import hookimpl

PROBE_API = 2

INSTALL_LINE = 'probe ui needs the web page extra: pip install -e ".[ui]" (or pip install "clip-probe[ui]")'


def ui_app(session: Any, out_dir: Path | str = "probe-out", title: str = "clip-probe") -> Any:
    """The web page of `probe ui` for a session (or a function returning one), writing under out_dir:
    a Gradio Blocks (needs the ui extra). Serve it with `probe.ui_serve`."""
    from probe_ui.app import build_app

    return build_app(session, out_dir, title=title)


def ui_serve(
    app: Any,
    out_dir: Path | str = "probe-out",
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    block: bool = True,
) -> str:
    """Serve a page from `probe.ui_app`, only out_dir's files served; returns its local URL."""
    from probe_ui.app import launch

    return launch(app, out_dir, host=host, port=port, share=share, block=block)


@hookimpl
def register_python_api(register) -> None:
    register("ui_app", ui_app, "the web page of probe ui for a session (a Gradio Blocks; needs the ui extra)")
    register("ui_serve", ui_serve, "serve a probe.ui_app page, only the output folder's files served")


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("ui", rich_help_panel="Probes")
    def ui(
        ctx: typer.Context,
        host: Annotated[
            str, typer.Option(help="Address to listen on (0.0.0.0 opens it to the network: only when you mean it).")
        ] = "127.0.0.1",
        port: Annotated[
            int | None, typer.Option(help="Port [default: 7860, or the next free one].", show_default=False)
        ] = None,
        share: Annotated[
            bool, typer.Option("--share", help="Also open a public link through Gradio's share servers.")
        ] = False,
    ) -> None:
        """A local web page for every probe (invert, neighbours, shuffle test, score, runs) on one loaded model."""
        try:
            import gradio  # noqa: F401  (the ui extra)
        except ImportError:
            typer.echo(INSTALL_LINE, err=True)
            raise typer.Exit(2) from None
        from probe.plugin import console, current_session, options

        out_dir = options(ctx).out_dir
        session = current_session(ctx)  # loaded once, now: a bad model fails before the server starts
        page = ui_app(session, out_dir, title=f"clip-probe — {session.describe()['model']}")
        url = ui_serve(page, out_dir, host=host, port=port, share=share, block=False)
        typer.echo(url)
        if getattr(page, "share_url", None):
            typer.echo(page.share_url)
        console.note(f"results go to {out_dir}; Ctrl-C stops the server")
        try:
            page.block_thread()
        finally:
            page.close()
