"""What distribution smoothing's models share: the smoothed pair p(x~), p(x | x~) and its step-
based fitting preset.
"""
