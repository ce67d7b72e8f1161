"""Commands that belong to the core rather than a probe: plugins, models, cache."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from probe.registry import API_VERSION, Registry
from probe.registry.discovery import SLOW_IMPORT_SECONDS as SLOW
from probe.registry.records import ModelLoader

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def register(app: typer.Typer, registry: Registry) -> None:
    @app.command("plugins", rich_help_panel="Models, plugins and data")
    def plugins_cmd(
        as_json: JsonFlag = False,
        hooks: Annotated[
            bool, typer.Option("--hooks", help="Also list each plugin's hooks and what it registered.")
        ] = False,
        timings: Annotated[
            bool, typer.Option("--timings", help="Also list how long each plugin took to import.")
        ] = False,
    ) -> None:
        """List plugins: distribution, version, plugin API, status (and why), commands; clashes and
        replacements; --hooks for what each registered, --timings for import times."""
        from probe.cli import console

        registered: dict[str, list[str]] = {}
        for ext in registry.all_extensions():  # collected always, so clashes and broken hooks show
            registered.setdefault(ext.plugin, []).append(f"{ext.kind} {ext.name}")
        rows = [{**p.info.as_dict(), "registered": registered.get(p.info.name, [])} for p in registry.plugins]
        if as_json:
            console.print_json(
                {
                    "api_version": API_VERSION,
                    "plugins": rows,
                    "clashes": registry.clashes,
                    "replacements": registry.replacements,
                    "warnings": registry.warnings,
                }
            )
            registry.messages()  # in the JSON already: not repeated on stderr
            return
        columns = ["name", "distribution", "version", "api", "status", "commands / reason"]
        table_rows = [
            [
                r["name"],
                r["distribution"],
                r["version"],
                r["api"] or "-",
                r["status"],
                r["reason"] or ", ".join(r["commands"]),
            ]
            for r in rows
        ]
        console.print_table(columns, table_rows, title=f"Plugins (plugin API {API_VERSION})")
        if registry.clashes or registry.replacements:
            console.print_table(
                ["what", "detail"],
                [["clash", c] for c in registry.clashes]
                + [
                    ["replaced", f"{r['kind']} {r['name']!r}: plugin {r['plugin']!r} replaces plugin {r['replaced']!r}"]
                    for r in registry.replacements
                ],
                title="Clashes and replacements",
            )
        if timings:
            console.print_table(
                ["plugin", "seconds", ""],
                [
                    [p.info.name, f"{p.info.import_seconds:.3f}", "slow" if p.info.import_seconds > SLOW else ""]
                    for p in registry.plugins
                ],
                title="Import time",
            )
        if hooks:
            console.print_table(
                ["plugin", "hooks", "registered", "about"],
                [
                    [p.info.name, ", ".join(h.removeprefix("register_") for h in p.info.hooks), "", ""]
                    for p in registry.plugins
                    if p.module is not None
                ]
                + [[ext.plugin, "", f"{ext.kind} {ext.name}", ext.about] for ext in registry.all_extensions()],
                title="Registered through hooks",
            )

    models = typer.Typer(help="List models, or convert a checkpoint to safetensors.", invoke_without_command=True)

    @models.callback()
    def models_cmd(
        ctx: typer.Context,
        as_json: JsonFlag = False,
        pretrained: Annotated[
            bool, typer.Option("--pretrained", help="Also list open_clip ARCH@TAG pairs (need cached weights).")
        ] = False,
    ) -> None:
        """List built-in models, plugins' model-loader prefixes (and, with --pretrained, open_clip's tagged weights)."""
        if ctx.invoked_subcommand is not None:
            return
        from probe.cli import console
        from probe.models.specs import BUILTIN_MODELS, DEFAULT_MODEL, list_models

        names = list_models(include_pretrained=pretrained)
        loaders = [
            {"prefix": ext.name, "plugin": ext.plugin, "about": ext.about}
            for ext in registry.found(ModelLoader).values()
        ]
        if as_json:
            console.print_json(names)  # plugin loaders are prefixes, not models: `probe plugins --json` lists them
            return
        rows = [
            [n, "default" if n == DEFAULT_MODEL else "", BUILTIN_MODELS.get(n, {}).get("about", "open_clip pretrained")]
            for n in names
        ]
        rows += [[f"{x['prefix']}…", "", f"{x['about']} (plugin {x['plugin']})".strip()] for x in loaders]
        console.print_table(["spec", "", "about"], rows, title="Models")

    @models.command("convert")
    def models_convert(
        ctx: typer.Context,
        src: Annotated[Path, typer.Argument(help="Pickle checkpoint (.pt, .pth, .bin, .ckpt).")],
        dst: Annotated[Path, typer.Argument(help="Output .safetensors file (a .sha256 file is written beside it).")],
        allow_pickle: Annotated[
            bool, typer.Option("--allow-pickle", help="Read the pickle: only for files you trust.")
        ] = False,
        force: Annotated[bool, typer.Option("--force", help="Replace DST if it exists.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Convert a pickle checkpoint to safetensors once (the pickle is read only with --allow-pickle)."""
        from probe.cli import console
        from probe.cli.state import get_state
        from probe.models.convert import convert_checkpoint

        done = convert_checkpoint(src, dst, allow_pickle=allow_pickle or get_state(ctx).allow_pickle, force=force)
        if as_json:
            console.print_json({"safetensors": str(done.path), "sha256": done.sha256, "activation": done.activation})
            return
        act = f", activation {done.activation} recorded" if done.activation else ""
        console.note(
            f"wrote {done.path} (sha256 {done.sha256}{act}) and {done.path.name}.sha256; "
            f"load it with -m ARCH@{done.path}"
        )

    app.add_typer(models, name="models", rich_help_panel="Models, plugins and data")

    cache = typer.Typer(
        help="List or clear the user cache (vocabulary indexes, text snapshots, hashes).", no_args_is_help=True
    )

    @cache.command("list")
    def cache_list(as_json: JsonFlag = False) -> None:
        """Show cached items under the cache folder with their sizes."""
        from probe.cli import console
        from probe.files.cache import cache_dir, owned_files, tool_subfolders

        root = cache_dir()
        items: list[dict[str, Any]] = [
            {"path": str(p.relative_to(root)), "bytes": p.stat().st_size}
            for folder in tool_subfolders(root)
            for p in owned_files(folder)
            if not p.name.endswith((".lock", ".tmp"))
        ]
        if as_json:
            console.print_json({"folder": str(root), "items": items})
            return
        console.print_table(
            ["file", "size"], [[i["path"], f"{i['bytes'] / 1e6:.2f} MB"] for i in items], title=f"Cache {root}"
        )

    @cache.command("clear")
    def cache_clear(
        what: Annotated[
            str | None, typer.Argument(help="Subfolder to clear (e.g. indexes); all the tool's own when omitted.")
        ] = None,
    ) -> None:
        """Delete cached files (they are rebuilt on demand); files the tool did not write are kept."""
        from probe.cli import console
        from probe.errors import ProbeError, UsageError
        from probe.files.cache import cache_root, clear_cache, tool_subfolders

        root = cache_root()
        ours = tool_subfolders(root)
        targets = [p for p in ours if p.name == what] if what else ours
        if what and not targets:
            names = ", ".join(p.name for p in ours) or "none yet"
            raise UsageError(f"no cache folder {what!r} under {root}", hint=f"the tool's cache folders: {names}")
        result = clear_cache(targets)
        if result.failed:
            path, why = result.failed[0]
            raise ProbeError(
                f"could not remove {len(result.failed)} cached file(s) under {root} ({path}: {why}); "
                f"removed {len(result.removed)}",
                hint="check the cache folder's permissions, or set PROBE_CACHE_DIR to a writable folder",
            )
        if not targets:
            console.note(f"nothing to clear in {root}")
            return
        kept = f"; kept {len(result.kept)} file(s) clip-probe did not write" if result.kept else ""
        console.note(f"cleared {len(result.removed)} file(s) in {', '.join(str(t) for t in targets)}{kept}")

    app.add_typer(cache, name="cache", rich_help_panel="Models, plugins and data")
