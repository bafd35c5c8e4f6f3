"""A decoder-only causal transformer over any discrete raster dataset."""
