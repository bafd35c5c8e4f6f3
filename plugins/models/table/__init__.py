"""Random table models: causal models small enough to enumerate (exactness certificates)."""
