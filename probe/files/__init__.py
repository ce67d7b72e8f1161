"""Files: atomic writes, safe names, input checks, images and PNG metadata, contact sheets, YAML with
line numbers, the cache folder and its locks. Helpers for plugins, without the stability promise of
`probe.plugin`."""
