"""The Hugging Face hub, offline first: whether it can be reached, and look-ups that stay cache-only
when it cannot (so an offline machine fails at once instead of after minutes of retries)."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator


def network_available(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A quick reachability check, so an offline machine fails at once instead of after minutes of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


@contextlib.contextmanager
def hub_mode(online: bool) -> Iterator[None]:
    """Run hub look-ups cache-only when offline (huggingface_hub reads this flag at call time)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        yield
        return
    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = old or not online
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old
