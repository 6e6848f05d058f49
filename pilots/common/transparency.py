"""The document every model package holds as `transparency.json`: its ONC HTI-1 source attributes.

45 CFR 170.315(b)(11)(iv)(A) lists the source attributes of a predictive decision-support
intervention; each pilot answers them for its model (pilots/<pilot>/transparency.py), under this format
name, and GetModelInfo returns the document as is, so the package's SHA-256 covers what it says.
"""

from __future__ import annotations

from typing import Final

FORMAT: Final = "clinpred-hti1-source-attributes/1"
