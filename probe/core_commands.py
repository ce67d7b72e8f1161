"""Commands that belong to the core rather than a probe: plugins, models, cache."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from probe.registry import LoadedPlugin

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def register(app: typer.Typer, plugins: list[LoadedPlugin]) -> None:
    @app.command("plugins")
    def plugins_cmd(as_json: JsonFlag = False) -> None:
        """List plugins with their distribution, version and status."""
        from probe import console

        rows = [p.info.as_dict() for p in plugins]
        if as_json:
            console.print_json(rows)
            return
        console.print_table(
            "Plugins", ["name", "distribution", "version", "status", "commands / reason"],
            [[r["name"], r["distribution"], r["version"], r["status"], r["reason"] or ", ".join(r["commands"])] for r in rows],
        )

    @app.command("models")
    def models_cmd(
        as_json: JsonFlag = False,
        pretrained: Annotated[bool, typer.Option("--pretrained", help="Also list open_clip ARCH@TAG pairs (need cached weights).")] = False,
    ) -> None:
        """List built-in models (and, with --pretrained, open_clip's tagged weights)."""
        from probe import console
        from probe.models import BUILTIN_MODELS, DEFAULT_MODEL, list_models

        names = list_models(include_pretrained=pretrained)
        if as_json:
            console.print_json(names)
            return
        rows = [[n, "default" if n == DEFAULT_MODEL else "", BUILTIN_MODELS.get(n, {}).get("about", "open_clip pretrained")] for n in names]
        console.print_table("Models", ["spec", "", "about"], rows)

    cache = typer.Typer(help="List or clear the user cache (vocabulary indexes, text snapshots, hashes).", no_args_is_help=True)

    @cache.command("list")
    def cache_list(as_json: JsonFlag = False) -> None:
        """Show cached items under the cache folder with their sizes."""
        from probe import console
        from probe.cache import MARKER, cache_dir

        root = cache_dir()
        items = [
            {"path": str(p.relative_to(root)), "bytes": p.stat().st_size}
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock") and p.name != MARKER
        ]
        if as_json:
            console.print_json({"folder": str(root), "items": items})
            return
        console.print_table(f"Cache {root}", ["file", "size"], [[i["path"], f"{i['bytes'] / 1e6:.2f} MB"] for i in items])

    @cache.command("clear")
    def cache_clear(
        what: Annotated[Optional[str], typer.Argument(help="Subfolder to clear (e.g. indexes); all the tool's own when omitted.")] = None,
    ) -> None:
        """Delete cached files (they are rebuilt on demand); files the tool did not write are kept."""
        import shutil

        from probe import console
        from probe.cache import cache_root, tool_subfolders
        from probe.errors import UsageError

        root = cache_root()
        ours = tool_subfolders(root)
        targets = [p for p in ours if p.name == what] if what else ours
        if what and not targets:
            names = ", ".join(p.name for p in ours) or "none yet"
            raise UsageError(f"no cache folder {what!r} under {root}", hint=f"the tool's cache folders: {names}")
        for target in targets:
            shutil.rmtree(target, ignore_errors=True)
            console.note(f"cleared {target}")
        if not targets:
            console.note(f"nothing to clear in {root}")

    app.add_typer(cache, name="cache")
