"""Mini-Dropbox: a self-hosted Dropbox with replicated, content-addressed storage."""

__version__ = "0.1.0"
