"""Built-in plugin: audit."""
