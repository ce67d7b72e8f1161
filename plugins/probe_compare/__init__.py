"""The built-in `compare` plugin: `probe compare RUN...` and `probe.compare(runs)`."""
