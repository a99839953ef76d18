"""Prefect flows composing nnpipe.data, nnpipe.core and nnpipe.tracking."""
