"""Which way a metric is better: a fact every record carries, so that reports and the
regression gate read it without importing the metric."""

from typing import Literal

Direction = Literal["lower", "higher"]
"""``lower`` (an NLL, a distance) or ``higher`` (an SNR, a score) is better."""
