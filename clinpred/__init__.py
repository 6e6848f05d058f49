"""clinpred: clinical prediction services that hospitals run themselves."""

__version__ = "0.1.0"
