"""Every example on every page runs when pasted in order into one fresh folder.

Each page (README.md and docs/**/*.md) gets a fresh folder; its shell commands (a block line by line,
or whole when it holds a heredoc) and its Python blocks run in page order there, with the installed
`probe` on PATH and the built-in model. Only examples that need what a CPU-only, offline machine
cannot give are skipped, each for a reason listed in SKIPS. Running every page takes tens of minutes
on two CPU cores, so it is opt-in: `make docs-examples` (PROBE_DOCS_EXAMPLES=1); the parsing and the
skip list are tested in every run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

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
    (r"--preset paper", "the paper's 3,400-step recipe: hours on a CPU"),
    (
        r"^\s*(pip|python3? -m pip|python3 -m venv|\. \.venv|hf |huggingface-cli|git |sbatch|srun)\b",
        "installs or fetches: set-up, not an example",
    ),
    (
        r"^\s*make\b|^\s*(python3? )?(-m )?(pytest|mkdocs)\b|python3? (benchmarks|tools)/|python3? -m pytest",
        "the project's own tooling (tests, docs, benchmarks)",
    ),
    (r"probe world train|invert-validate|--n 20\b|--seeds 0-31", "minutes of training or validation on CPU"),
    (r"(^|\s)(cd|export) ", "changes the shell for the next lines (shown for a user's own shell)"),
    (r"^\s*probe\b.* ui\b|examples/ui_app\.py", "starts a web server that runs until stopped"),
    (r"--address (auto|ray://)", "joins a running Ray cluster"),
]

#: Files a page's examples name as the user's own inputs; made in the page's folder before it runs.
INPUTS = {
    "prompts.txt": "a red star\na blue circle\n",
    "photo.jpg": None,  # an image (made below)
}


@dataclass
class Example:
    page: str
    line: int
    language: str  # bash | python
    code: str
    skip: str = ""  # the reason, when skipped


def examples(page: Path) -> list[Example]:
    """A page's runnable examples in order: a shell block's commands one by one (a block with a heredoc
    or a line continuation stays whole), each Python block whole."""
    text = page.read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```(bash|python)\n(.*?)^```", text, re.M | re.S):
        language, body = match.group(1), match.group(2)
        line = text.count("\n", 0, match.start()) + 2
        if language == "python" or "<<" in body or "\\\n" in body:
            found.append(Example(page.name, line, language, body))
            continue
        for offset, command in enumerate(body.splitlines()):
            if command.strip() and not command.lstrip().startswith("#"):
                found.append(Example(page.name, line + offset, "bash", command))
    for example in found:
        code = re.sub(r"(^|\s)#.*$", "", example.code, flags=re.M)  # what a comment mentions is not run
        example.skip = next((why for pattern, why in SKIPS if re.search(pattern, code, re.M)), "")
    return found


def _inputs(folder: Path) -> None:
    from probe.files.images import write_png

    (folder / "prompts.txt").write_text(str(INPUTS["prompts.txt"]))
    import torch

    write_png(folder / "photo.jpg", torch.rand(3, 32, 32))


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
    _inputs(tmp_path)
    for example in examples(page):
        if example.skip:
            continue
        argv = (
            ["bash", "-e", "-c", example.code] if example.language == "bash" else [sys.executable, "-c", example.code]
        )
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
        assert done.returncode == 0, (
            f"{page.name}:{example.line}: `{example.code.strip()[:200]}` exited {done.returncode}:\n"
            f"{done.stderr[-3000:]}"
        )
