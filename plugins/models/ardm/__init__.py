"""Autoregressive diffusion models (ARDMs): the order-agnostic and upscale models and the image
backbone.
"""
