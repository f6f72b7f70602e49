"""Errors raised by the data layer; each message names the file, sheet row or folder at fault."""


class DataError(Exception):
    """A dataset on disk is missing, incomplete or malformed."""
