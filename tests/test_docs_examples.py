"""Every example on every page runs when pasted in order into one fresh folder.

Each page (README.md and docs/**/*.md) gets a fresh folder; its shell commands (a block line by line,
or whole when it holds a heredoc) and its Python blocks run in page order there, with the installed
`probe` on PATH and the built-in model. Only examples that need what a CPU-only, offline machine
cannot give are skipped, each for a reason listed in SKIPS. Running every page takes tens of minutes
on two CPU cores, so it is opt-in: `make docs-examples` (PROBE_DOCS_EXAMPLES=1); the parsing and the
skip list are tested in every run.

An example expected to end with another exit status says so in an HTML comment (invisible on the page)
on the line before its block: `<!-- example: exit 1 -->` (every command of that block must exit 1, e.g.
an inversion the page shows ending `failed`); a block that only runs where this machine cannot (the
paper's model, a cluster, a GPU machine) says why: `<!-- example: skip: REASON -->`. A page's commands
run from a clone's root: besides what its own examples make, they may use the files under docs/examples/.
A Python block under a line naming a file (`` `name.py` ``) is saved as that file before it runs, as a
user would save it.
`python tests/test_docs_examples.py` lists every skipped example with its reason.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

#: (pattern, reason): an example matching a pattern is skipped for its reason, and only those.
SKIPS: list[tuple[str, str]] = [
    (
        r"ViT-|RN50|@openai|@laion|hf-hub:|hf-transformers:|ViT-B|EVA|SigLIP|ConvNeXt|coca",
        "a real-size model: its weights need the network (or minutes on CPU)",
    ),
    (r"--device cuda|--precision fp16|nvidia-smi|CUDA_VISIBLE_DEVICES", "needs a GPU"),
    (r"--preset paper", "the paper's 3,400-step recipe: over half an hour per image on a CPU"),
    (
        r"^\s*(pip|python3? -m pip|python3 -m venv|\. \.venv|hf |huggingface-cli|git |sbatch|srun)\b",
        "installs or fetches: set-up, not an example",
    ),
    (
        r"^\s*make\b|^\s*(python3? )?(-m )?(pytest|mkdocs)\b|(python3?|bash) (benchmarks|tools)/|python3? -m pytest",
        "the project's own tooling (tests, docs, benchmarks)",
    ),
    (r"probe world train|invert-validate|--n 20\b|--seeds 0-31", "minutes of training or validation on CPU"),
    (r"(^|\s)(cd|export) ", "changes the shell for the next lines (shown for a user's own shell)"),
    (r"^\s*probe\b.* ui\b|examples/ui_app\.py", "starts a web server that runs until stopped"),
    (r"--address (auto|ray://)", "joins a running Ray cluster"),
]


@dataclass
class Example:
    page: str
    line: int
    language: str  # bash | python
    code: str
    skip: str = ""  # the reason, when skipped
    exit: int = 0  # the exit status the page says it ends with
    file: str = ""  # the file a Python block is, when the page names it on the line above (`name.py`)


def examples(page: Path) -> list[Example]:
    """A page's runnable examples in order: a shell block's commands one by one (a block with a heredoc
    or a line continuation stays whole), each Python block whole."""
    text = page.read_text(encoding="utf-8")
    found = []
    pattern = r"^(?:`([\w.-]+\.py)`\n\n)?(?:<!-- example: (exit \d+|skip: [^\n]*?) -->\n)?```(bash|python)\n(.*?)^```"
    for match in re.finditer(pattern, text, re.M | re.S):
        file, marker, language, body = match.group(1) or "", match.group(2) or "", match.group(3), match.group(4)
        status = int(marker[5:]) if marker.startswith("exit ") else 0
        line = text.count("\n", 0, match.start(3)) + 2
        block = []
        if language == "python" or "<<" in body or "\\\n" in body:
            block.append(Example(page.name, line, language, body, exit=status, file=file))
        else:
            for offset, command in enumerate(body.splitlines()):
                if command.strip() and not command.lstrip().startswith("#"):
                    block.append(Example(page.name, line + offset, "bash", command, exit=status))
        for example in block:
            code = re.sub(r"(^|\s)#.*$", "", example.code, flags=re.M)  # what a comment mentions is not run
            example.skip = marker[6:] if marker.startswith("skip: ") else _listed_reason(code)
        found.extend(block)
    return found


def _listed_reason(code: str) -> str:
    return next((why for pattern, why in SKIPS if re.search(pattern, code, re.M)), "")


def _clone_root(folder: Path) -> None:
    """The files a clone ships under docs/examples/, which pages point to (their commands run from a clone's root)."""
    shutil.copytree(ROOT / "docs" / "examples", folder / "docs" / "examples")


def test_examples_are_found_and_skips_are_only_the_listed_kinds():
    readme = examples(ROOT / "README.md")
    assert any(e.code.startswith("probe invert ") and not e.skip for e in readme)
    assert any(e.language == "python" and not e.skip for e in readme)
    assert [e.skip for e in readme if "ViT-B-16@openai bias" in e.code] == [SKIPS[0][1]]
    assert examples_from("```bash\ncat > a.yaml <<'END'\nx: 1\nEND\nprobe run a.yaml\n```\n")[0].code.count("\n") == 4
    assert [e.code for e in examples_from("```bash\nprobe a  # b\n\n# c\n  probe d\n```\n")] == [
        "probe a  # b",
        "  probe d",
    ]
    marked = examples_from("```bash\nprobe a\n```\n<!-- example: exit 1 -->\n```bash\nprobe b\nprobe c\n```\n")
    assert [(e.code, e.exit, e.line) for e in marked] == [("probe a", 0, 2), ("probe b", 1, 6), ("probe c", 1, 7)]
    saved = examples_from("`plugin.py`\n\n```python\nx = 1\n```\n```python\ny = 2\n```\n")
    assert [(e.code, e.file) for e in saved] == [("x = 1\n", "plugin.py"), ("y = 2\n", "")]
    skipped = examples_from("<!-- example: skip: a cluster -->\n```bash\nprobe a\nprobe b\n```\n```bash\nprobe c\n```")
    assert [(e.code, e.skip) for e in skipped] == [("probe a", "a cluster"), ("probe b", "a cluster"), ("probe c", "")]


def named_options(text: str) -> list[tuple[str, str]]:
    """(command, option) for each `--option` a page writes after `probe [global options] COMMAND` (in a code
    block or in running text), e.g. ("invert", "--steps")."""
    found: list[tuple[str, str]] = []
    for match in re.finditer(r"(?<![\w/-])probe((?: +[^\s`|#;&)]+)+)", text):
        words = [w.strip("[]'\"") for w in match.group(1).split()]
        command = next((w for w in words if re.fullmatch(r"[a-z][a-z-]*", w)), None)
        if command is None:
            continue
        options = [w for w in words[words.index(command) + 1 :] if w.startswith("--") and len(w) > 2]
        found.extend((command, option.split("=")[0]) for option in options)
    return found


def test_every_option_the_docs_name_exists():
    import typer

    from probe.cli.app import build_app

    group: Any = typer.main.get_command(build_app())
    context = group.context_class(group)

    def options(command: Any) -> set[str]:
        return {o for p in command.params for o in (*p.opts, *p.secondary_opts)} | {"--help"}

    global_options = options(group)
    wrong = []
    for page in PAGES:
        for command, option in named_options(page.read_text(encoding="utf-8")):
            found = group.get_command(context, command)
            if found is None or hasattr(found, "list_commands"):  # prose ("probe is ..."), or a group's subcommand
                continue
            if option not in options(found) | global_options:
                wrong.append(f"{page.relative_to(ROOT)}: probe {command} {option}")
    assert not wrong, "options no command has:\n" + "\n".join(wrong)
    assert ("invert", "--steps") in named_options('`probe -m X invert "a b" --steps 3 --set lr=1`')


def examples_from(text: str) -> list[Example]:
    page = Path(os.environ.get("TMPDIR", "/tmp")) / f"probe-docs-{os.getpid()}.md"
    page.write_text(text)
    try:
        return examples(page)
    finally:
        page.unlink()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("PROBE_DOCS_EXAMPLES") != "1", reason="tens of minutes: make docs-examples")
@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_every_example_on_the_page_runs_in_order(page, tmp_path):
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    env.pop("PROBE_MODEL", None)
    _clone_root(tmp_path)
    for example in examples(page):
        if example.skip:
            continue
        if example.file:  # the page shows a file's content: a user saves it there
            (tmp_path / example.file).write_text(example.code, encoding="utf-8")
        argv = (
            ["bash", "-e", "-c", example.code] if example.language == "bash" else [sys.executable, "-c", example.code]
        )
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
        assert done.returncode == example.exit, (
            f"{page.name}:{example.line}: `{example.code.strip()[:200]}` exited {done.returncode}:\n"
            f"{done.stderr[-3000:]}"
        )


if __name__ == "__main__":  # every skipped example, with its reason
    for page in PAGES:
        for example in examples(page):
            if example.skip:
                first = example.code.strip().splitlines()[0][:90]
                print(f"{page.relative_to(ROOT)}:{example.line}: {first}\n    {example.skip}")
