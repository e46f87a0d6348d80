"""One module per paper; each declares its ``CITATION``."""
