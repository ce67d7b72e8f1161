"""The default preset's values of the knobs `probe invert` has flags for: declared here once, read by
the settings model and by `--help` (which must not import pydantic: `probe --help` stays fast)."""

from __future__ import annotations

STEPS = 90
COPIES = 4
BATCH_SIZE = 32

FLAG_DEFAULTS = {"steps": STEPS, "copies": COPIES, "batch_size": BATCH_SIZE}
