"""The genomics server for the CLI's genomics tests, exactly as the genomics integration tests start it.

Imported here, not in ../conftest.py, so the other pilots' CLI tests load without the genomics stack.
"""

from tests.integration.genomics.conftest import breast_package, layout_served, pgs37, pgs_file  # noqa: F401
