"""Built-in plugin: `probe shuffle-test`, word-order sensitivity (shuffled and swapped captions, ARO-style scores)."""
