"""A third-party clip-probe plugin: cosine similarity between texts in a CLIP text space."""

from typing import Annotated

import typer

from probe.plugin import current_session, hookimpl

PROBE_API = 1


def similarity(session, texts: list[str]) -> list[list[float]]:
    """Library function: scripts and other plugins call it with a session."""
    emb = session.encode_text(texts)
    return (emb @ emb.T).tolist()


@hookimpl
def register_commands(app: typer.Typer) -> None:
    @app.command("similarity")
    def similarity_cmd(
        ctx: typer.Context,
        texts: Annotated[list[str], typer.Argument(help="Two or more texts.")],
    ) -> None:
        """Cosine similarity between texts in the model's text space."""
        session = current_session(ctx, text_only=True)  # the shared model, loaded on first use
        for text, row in zip(texts, similarity(session, texts), strict=True):
            typer.echo(text + "\t" + "\t".join(f"{v:.3f}" for v in row))


@hookimpl
def register_python_api(register) -> None:
    register("similarity", similarity, "cosine similarity matrix of texts")
