"""Built-in plugin: run (the experiment engine)."""
