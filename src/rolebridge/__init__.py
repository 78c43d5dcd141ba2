"""rolebridge: short-lived cloud identities for data jobs, runnable offline."""

__version__ = "0.1.0"
