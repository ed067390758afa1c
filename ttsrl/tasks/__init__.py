"""Training tasks: what a model needs to be trained (model, data, loss, metrics), ESPnet style."""
