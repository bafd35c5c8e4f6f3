"""Anytime sampling: the ordered VQ-VAE, its code prior, and the unordered control."""
