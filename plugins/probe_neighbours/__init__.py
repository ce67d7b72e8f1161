"""Built-in plugin: neighbours."""
