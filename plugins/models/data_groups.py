"""Datasets several model families have checkpoints for (or train on), named once."""

POINTS = ("rings", "olympics", "checkerboard")
FILE_IMAGES = frozenset({"cifar10", "mnist", "imagefolder"})
CIFAR10_GROUPS = frozenset({"cifar10-groups", "cifar10-machines", "cifar10-animals"})
