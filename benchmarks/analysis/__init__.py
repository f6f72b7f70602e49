"""Diagnostics that look inside training (learning curves); reporting of finished runs lives in ``render``."""
