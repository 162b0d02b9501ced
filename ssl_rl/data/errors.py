"""Errors raised for bad dataset input: each names the file and what to fix."""


class DatasetError(RuntimeError):
    """A dataset on disk is missing, malformed or unusable; the message says what to fix."""
