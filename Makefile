# Quick start: `make run` sets up and serves; `make test` sets up and runs every test.
.PHONY: setup run test lint codegen settings-reference cli-reference fuzz bench bench-quick

setup:
	@bash scripts/setup.sh

run: setup
	.venv/bin/clinpred serve all

test: setup
	.venv/bin/python -m pytest

# Property-based fuzzing of every RPC of the three services with 10000 hostile examples each (hours: each
# ScoreEncrypted example is real CKKS arithmetic), on SQLite and PostgreSQL for deterioration; the normal
# suite runs a few per RPC. Each RPC's status codes are printed at the end of its module (-s); a test may run
# past the suite's 10-minute limit, so the limit is 4 hours here. CLINPRED_FUZZ_REPORT=file.json also writes
# deterioration's status codes.
fuzz: setup
	CLINPRED_FUZZ_EXAMPLES=10000 .venv/bin/python -m pytest -q -s -p no:cacheprovider --timeout 14400 tests/fuzz tests/integration/deterioration/test_fuzz.py

# Every service against its peer and its floor in one run, as ratios (about 10 minutes on 2 cores; bench/README.md):
# bench/reports/<UTC date>/ gets report.md, results.json and the plots. BENCH_ARGS="--only tumor,genomics" picks parts.
bench: setup
	.venv/bin/python -m bench.suite $(BENCH_ARGS)

# The same run with tiny plans (about a minute on an idle machine): a smoke run, numbers mean nothing.
bench-quick: setup
	.venv/bin/python -m bench.suite --quick $(BENCH_ARGS)

lint: setup
	.venv/bin/ruff check .
	.venv/bin/mypy
	cd protos && ../node_modules/.bin/buf lint

codegen: setup
	.venv/bin/python -m clinpred.services.api.codegen

# The README's settings reference, regenerated from the settings classes (a test fails on drift).
settings-reference: setup
	.venv/bin/python -m clinpred.services.common.settings_reference --write README.md

# The README's command-line reference, regenerated from the typer app (a test fails on drift).
cli-reference: setup
	.venv/bin/python -m clinpred.cli.reference --write README.md
