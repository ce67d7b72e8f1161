"""The built-in `ui` plugin: `probe ui`, a local web page for every probe on the one loaded model."""
