"""Fast exact encoding: the text tower's batched path, the image tower's inference form, text-only
snapshots."""
