"""Built-in plugin: shuffle."""
