"""MADE with a mixture of logistics: the 2-D density models of distribution smoothing and the
true density.
"""
