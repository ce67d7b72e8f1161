"""Built-in plugin: CLIP scores of images against prompts, and zero-shot labels."""
