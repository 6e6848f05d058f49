"""Fuzz tests run against the same in-process servers as the integration tests."""

from tests.integration.deterioration.conftest import deterioration_package  # noqa: F401  (fixtures)
from tests.integration.genomics.conftest import (  # noqa: F401  (fixtures)
    breast_package,
    layout_served,
    pgs37,
    pgs_file,
    scoring_dir,
)
from tests.integration.tumor.conftest import tumor_package, tumor_target, wdbc_cases  # noqa: F401  (fixtures)
