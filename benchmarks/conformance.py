"""Conformance table: one pretrained tag per open_clip family, loaded by clip-probe and by open_clip.

For each family: does the session load it, do its image and text embeddings equal open_clip's own
`create_model_and_transforms(arch, pretrained=tag)` and preprocessing (max |Δ|, fp32), is the exact
fast text path used (or the stock path as fallback), and do `score`, `neighbours`, `shuffle-test`,
`invert --steps 2` and `bias --n 1` run. Prints a Markdown table.

  python benchmarks/conformance.py                 # real sizes, seeded random weights in a temporary cache
  python benchmarks/conformance.py --small         # the reduced sizes the test suite uses
  python benchmarks/conformance.py --cache ~/.cache/huggingface/hub   # real downloaded weights, offline

Real sizes write each checkpoint (up to ~1 GB) and run every probe at the model's own resolution:
tens of minutes on a 2-core CPU. Hugging Face text towers take their config from `--cache`, or the
small one in tests/models/hfcache.py when it has none. Needs the [dev] extra (pytest, transformers).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.models import hfcache  # noqa: E402  (importable once the repository root is on sys.path)
from tests.models.test_conformance import FAMILIES, TEXTS  # noqa: E402  (as above)


def _embedding_gap(spec: str) -> tuple[float, float, bool]:
    """(max |Δ| image, max |Δ| text, fast text used) against open_clip's own model."""
    import numpy as np
    import open_clip
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from probe.session import Session

    session = Session.open(spec, device="cpu")
    arch, tag = spec.split("@")
    quick_gelu = bool(open_clip.get_pretrained_cfg(arch, tag).get("quick_gelu", False))
    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=tag, force_quick_gelu=quick_gelu)
    model.eval()
    pixels = np.random.default_rng(0).integers(0, 256, (session.image_size, session.image_size, 3), dtype=np.uint8)
    with torch.no_grad():
        image = F.normalize(model.encode_image(preprocess(Image.fromarray(pixels)).unsqueeze(0)), dim=-1)
        text = F.normalize(model.encode_text(open_clip.get_tokenizer(arch)(TEXTS)), dim=-1)
    got = session.encode_image(torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    return float((got - image).abs().max()), float((session.encode_text(TEXTS) - text).abs().max()), session.fast_text


def _probes(spec: str, work: Path) -> dict[str, str]:
    """'ok' or the first error line per probe, run in-process through the CLI."""
    from PIL import Image
    from typer.testing import CliRunner

    from probe.cli.app import build_app

    Image.new("RGB", (40, 40), (200, 30, 30)).save(work / "red.png")
    (work / "words.txt").write_text("\n".join(hfcache.WORDS) + "\n")
    runs: dict[str, list[Any]] = {
        "score": ["score", work / "red.png", "-p", "red", "-p", "blue"],
        "neighbours": ["neighbours", "a red circle", "--vocab", work / "words.txt", "--k", "3"],
        "shuffle-test": ["shuffle-test", "a red circle left of a blue square"],
        "invert": ["invert", "a red circle", "--steps", "2"],
        "bias": ["bias", "--prompts", "shapes", "--labels", "colours", "--n", "1", "--steps", "1", "--labeller", spec],
    }
    out = {}
    for name, args in runs.items():
        result = CliRunner().invoke(
            build_app(), ["--model", spec, "--device", "cpu", "--out", str(work / "out"), *map(str, args)]
        )
        out[name] = "ok" if result.exit_code == 0 else (result.stderr.strip().splitlines() or ["failed"])[-1]
    return out


def main() -> None:
    import pytest

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="reduced sizes (as the tests)")
    parser.add_argument("--cache", type=Path, help="an existing Hugging Face hub cache with the real weights")
    parser.add_argument("--only", nargs="*", help="specs to run (default: every family)")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of the table")
    args = parser.parse_args()
    rows = []
    for spec in args.only or list(FAMILIES):
        arch, tag = spec.split("@")
        with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
            work = Path(tmp)
            mp.setenv("PROBE_CACHE_DIR", str(work / "probe-cache"))
            cache = args.cache or work / "hf"
            hfcache.use_cache(mp, cache)
            if args.small:
                hfcache.register_small(mp, arch)
            start = time.perf_counter()
            row = {"spec": spec}
            try:
                if args.cache is None:
                    hfcache.write_tag(cache, arch, tag, seed=3)
                row["image_gap"], row["text_gap"], row["fast_text"] = _embedding_gap(spec)
                row["probes"] = _probes(spec, work)
            except Exception as exc:  # a row per family, whatever fails
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            row["seconds"] = round(time.perf_counter() - start, 1)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| family (tag) | loads | image max abs diff | text max abs diff | fast text | probes | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| `{r['spec']}` | no: {r['error']} | | | | | {r['seconds']} |")
            continue
        bad = {k: v for k, v in r["probes"].items() if v != "ok"}
        probes = "all 5 run" if not bad else "; ".join(f"{k}: {v}" for k, v in bad.items())
        print(
            f"| `{r['spec']}` | yes | {r['image_gap']:.1e} | {r['text_gap']:.1e} | "
            f"{'exact' if r['fast_text'] else 'fallback'} | {probes} | {r['seconds']} |"
        )


if __name__ == "__main__":
    main()
