"""The digits classifier: the feature space of digits FID and IS."""
