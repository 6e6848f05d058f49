"""Generated protobuf and gRPC code for the `clinpred.*.v1` proto packages.

Do not edit: regenerate with `python -m clinpred.services.api.codegen`.
A test regenerates and fails on any drift.
"""
