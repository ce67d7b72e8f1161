"""Hugging Face transformers CLIP checkpoints as a model kind: `hf-transformers:REPO_OR_FOLDER`."""
