"""Reimplemented MER baselines: arrays/tensors in, no harness imports."""
