"""Plugin outputs checked at the boundary, and plugin exceptions named.

What a plugin returns is checked where the core receives it: a wrong output is one line naming the
plugin and the hook (exit 1), before anything is written as if it had succeeded. A plugin's own
exception at run time becomes the same kind of line; a `ProbeError` it raises on purpose passes through.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

from probe.errors import ProbeError


class PluginError(ProbeError):
    """A plugin broke its contract or raised at run time. The message names the plugin and the hook."""

    def __init__(self, plugin: str, hook: str, name: str, problem: str, builtin: bool = False) -> None:
        super().__init__(
            f"plugin {plugin!r}, {hook} {name!r}: {problem}",
            hint="a bug in clip-probe: please report it" if builtin else f"report this to the authors of {plugin!r}",
        )
        self.plugin, self.hook = plugin, hook


def one_line(exc: BaseException) -> str:
    """The exception as one line; a multi-line message (pluggy's validation errors) joined with '; '."""
    text = "; ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
    return f"{type(exc).__name__}: {text}".rstrip(": ")


def guarded(
    fn: Callable[..., Any],
    plugin: str,
    hook: str,
    name: str,
    builtin: bool = False,
    check: Callable[..., Any] | None = None,
) -> Callable[..., Any]:
    """`fn` whose exceptions (other than ProbeError) name the plugin and hook; `check(result, *args)`
    vets or converts its result and returns the problem as a string, or "" when it is fine."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except ProbeError:
            raise
        except Exception as exc:  # a plugin's bug: say whose, keep the original as the cause (--debug)
            raise PluginError(plugin, hook, name, f"raised {one_line(exc)}", builtin) from exc
        problem = check(result, *args, **kwargs) if check is not None else ""
        if problem:
            raise PluginError(plugin, hook, name, problem, builtin)
        return result

    call.__probe_plugin__ = plugin  # type: ignore[attr-defined]  # who registered it, for messages
    return call


def perturbation_problem(result: Any, *args: Any, **kwargs: Any) -> str:
    """A perturbation returns the perturbed caption as a list of words (or None: nothing to perturb).
    A bare string would be read as a list of characters."""
    if result is None:
        return ""
    if isinstance(result, (str, bytes)):
        return f"returned a {type(result).__name__} ({str(result)[:40]!r}), not a list of words"
    if not isinstance(result, (list, tuple)) or not all(isinstance(w, str) for w in result):
        return f"returned {type(result).__name__}, not a list of words (str) or None"
    return ""


def outcomes_problem(result: Any, plan: Any, chunk: Any, *args: Any, **kwargs: Any) -> str:
    """A step kind's `run` returns exactly one Outcome per item of the chunk, no more and no other;
    once the run is asked to stop (Ctrl-C, SIGTERM) items it did not finish may have none (they stay
    pending for --resume)."""
    if not isinstance(result, list):
        return f"run returned {type(result).__name__}, not a list of Outcome"
    expected = [item.id for item in chunk.items]
    got = [getattr(o, "item_id", None) for o in result]
    ctx = args[0] if args else kwargs.get("ctx")
    should_stop = getattr(ctx, "should_stop", None)
    stopping = bool(should_stop is not None and should_stop())
    if stopping and len(set(got)) == len(got) and set(got) <= set(expected):
        return ""
    if sorted(map(str, got)) != sorted(expected) or len(got) != len(expected):
        missing = [i for i in expected if i not in got]
        extra = [i for i in got if i not in expected]
        detail = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}" if extra else "duplicates"
        return f"run returned {len(got)} outcomes for {len(expected)} items ({detail}): one Outcome per item"
    return ""


def prior_problem(values: Any, n_images: int) -> str:
    """A prior gives one finite penalty per image: a tensor (or sequence) of shape [n_images]."""
    shape = tuple(getattr(values, "shape", ()) or ())
    if hasattr(values, "shape"):
        if shape != (n_images,):
            return f"returned shape {list(shape)}, expected [{n_images}] (one penalty per image)"
        finite = getattr(values, "isfinite", None)
        if finite is not None and not bool(finite().all()):
            return "returned a penalty that is not finite (nan or inf)"
        return ""
    if isinstance(values, (int, float)) or not isinstance(values, Iterable):
        return f"returned {type(values).__name__}, expected {n_images} penalties (one per image)"
    items = list(values)
    if len(items) != n_images:
        return f"returned {len(items)} penalties for {n_images} images (one per image)"
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in items):
        return "returned a penalty that is not a finite number"
    return ""


def check_prior_output(values: Any, n_images: int, plugin: str, name: str, builtin: bool = False) -> Any:
    """Raise a PluginError unless `values` holds one finite penalty per image; return `values`.
    The invert engine calls this on each prior's output."""
    problem = prior_problem(values, n_images)
    if problem:
        raise PluginError(plugin, "register_invert_priors", name, problem, builtin)
    return values
