"""A fake third-party plugin used by tests: two probes that must share one loaded model."""

from __future__ import annotations

import typer

from probe.plugin import hookimpl


def probe_a(session) -> int:
    return id(session)


def probe_b(session) -> int:
    return id(session)


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("fake-two-probes")
    def two(ctx: typer.Context) -> None:
        """Runs two probes in one process."""
        from probe.cli.state import get_state

        state = get_state(ctx)
        same = probe_a(state.session) == probe_b(state.session)
        typer.echo(f"same={same} loads={state.loads}")

    @app.command("fake-fail")
    def fail() -> None:
        """Raises a domain error."""
        from probe.errors import ProbeError

        raise ProbeError("the fake probe failed", hint="do the other thing")
