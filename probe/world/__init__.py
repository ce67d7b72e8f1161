"""The procedural shapes world: scenes, renderer, captions, training and evaluation of `shapes-tiny`.

Kept import-light on purpose: submodules pull in torch, this package does not.
"""
