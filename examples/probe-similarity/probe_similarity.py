"""A third-party clip-probe plugin: cosine similarity between texts in a CLIP text space."""

from typing import Annotated

import typer


def similarity(session, texts: list[str]) -> list[list[float]]:
    """Library function: other plugins may call it with the shared session."""
    emb = session.encode_text(texts)
    return (emb @ emb.T).tolist()


def register_commands(app: typer.Typer) -> None:
    @app.command("similarity")
    def similarity_cmd(
        ctx: typer.Context,
        texts: Annotated[list[str], typer.Argument(help="Two or more texts.")],
    ) -> None:
        """Cosine similarity between texts in the model's text space."""
        from probe.cli_state import get_state

        session = get_state(ctx).session  # the shared, lazily loaded model
        for text, row in zip(texts, similarity(session, texts)):
            typer.echo(text + "\t" + "\t".join(f"{v:.3f}" for v in row))
