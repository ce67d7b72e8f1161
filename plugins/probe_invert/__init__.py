"""Built-in plugin: invert."""
