"""Built-in `world` plugin: render, train and evaluate the shapes world and its model."""
