"""MFVAN (Pan et al., Front. Neurosci. 2023): tensors in, no harness imports."""
