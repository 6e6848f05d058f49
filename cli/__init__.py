"""The `clinpred` command line."""
