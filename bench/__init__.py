"""Benchmark of the tumour service against a peer measured in the same run.

`python -m bench.run` starts the tumour service (`clinpred serve tumor`) and a
peer (MLServer 1.7 + mlserver-xgboost serving the same `booster.json` over the
V2 inference protocol on gRPC), drives both with one grpc.aio load generator
on loopback, and writes `bench/reports/<date>/report.md`. Results are ratios
ours/peer from the same run, never absolute claims. See bench/README.md.
"""
