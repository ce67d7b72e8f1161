"""A clip-probe plugin that extends the built-in probes instead of adding a command:

- `probe neighbours TEXT -v palette`: a vocabulary of colour names, the warm ones flagged `warm`;
- `probe shuffle-test ... --perturb swap-colours`: a perturbation that swaps two colour words;
- `probe invert PROMPT --set priors.muted=0.5`: an inversion prior that favours muted colours.
"""

from probe.plugin import hookimpl, make_vocabulary

PROBE_API = 1

WARM = ["red", "orange", "yellow", "pink", "brown", "crimson", "scarlet", "amber"]
COOL = ["blue", "green", "purple", "cyan", "teal", "navy", "violet", "turquoise"]
NEUTRAL = ["black", "white", "grey", "gray", "silver", "beige", "ivory"]


@hookimpl
def register_vocabularies(register):
    words = WARM + COOL + NEUTRAL
    register(
        "palette",
        lambda: make_vocabulary("palette", words, dict.fromkeys(WARM, "warm")),
        "colour names; warm ones flagged `warm`",
    )


def swap_colours(tokens, rng):
    """Two different colour words of the caption trade places; None when it has fewer than two."""
    colours = set(WARM + COOL + NEUTRAL)
    found = [i for i, t in enumerate(tokens) if t.lower() in colours]
    pairs = [(i, j) for i in found for j in found if i < j and tokens[i].lower() != tokens[j].lower()]
    if not pairs:
        return None
    i, j = rng.choice(pairs)
    out = list(tokens)
    out[i], out[j] = out[j], out[i]
    return out


@hookimpl
def register_perturbations(register):
    register("swap-colours", swap_colours, "two colour words swap places")


def make_muted(settings):
    def muted(ctx):
        """Per image: mean distance of each pixel from its own grey level."""
        grey = ctx.images.mean(dim=1, keepdim=True)
        return (ctx.images - grey).abs().flatten(1).mean(1)

    return muted


@hookimpl
def register_invert_priors(register):
    register("muted", make_muted, "favours muted colours: mean distance of each pixel from its grey")
