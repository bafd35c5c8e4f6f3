"""Training a model's recipe: the one loop (any device, several processes), minibatches,
throughput, and checkpoints with their sha256 sidecars."""
