"""clip-probe's web page (`probe ui`) as an app of its own: a Hugging Face Space's `app.py`, or a
lab server's entry point. It uses only the public Python API.

    PROBE_MODEL=shapes-tiny python examples/ui_app.py

Environment: PROBE_MODEL (default shapes-tiny), PROBE_OUT (default probe-out), GRADIO_SERVER_NAME
(default 127.0.0.1; Hugging Face Spaces set 0.0.0.0), GRADIO_SERVER_PORT (default 7860).
"""

from __future__ import annotations

import os

import probe

MODEL = os.environ.get("PROBE_MODEL", "shapes-tiny")
OUT = os.environ.get("PROBE_OUT", "probe-out")

session = probe.open(MODEL)  # loaded once; every tab and every visitor shares it
demo = probe.ui_app(session, out_dir=OUT, title=f"clip-probe — {MODEL}")

if __name__ == "__main__":
    url = probe.ui_serve(
        demo,
        OUT,
        host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
