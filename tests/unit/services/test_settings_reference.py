"""The settings reference: generated from the settings classes, the README's copy current, and
every CLINPRED_ variable the code reads listed, so that the unknown-variable warning is right."""

from __future__ import annotations

import logging
import re
import subprocess
import sys

import pytest

from clinpred.services.common import settings_reference
from clinpred.services.common.settings_reference import (
    END_MARKER,
    START_MARKER,
    known_variables,
    reference,
    render_markdown,
    replace_block,
    unknown_variable_messages,
    warn_about_unknown_variables,
)
from clinpred.services.tumor.settings import TumorSettings
from tests.conftest import REPO

# os.environ["X"], os.environ.get("X"), os.getenv("X"), environ.get("X") with a CLINPRED_ name.
_DIRECT_READ = re.compile(r"""(?:environ\.get|getenv|environ\[)\(?\s*["'](CLINPRED_[A-Z0-9_]+)["']""")


def test_the_readme_holds_the_generated_reference() -> None:
    readme = (REPO / "README.md").read_text()
    start, end = readme.index(START_MARKER), readme.index(END_MARKER) + len(END_MARKER)
    assert readme[start:end] == render_markdown(), (
        "README.md's settings reference is out of date: run "
        "`.venv/bin/python -m clinpred.services.common.settings_reference --write README.md`"
    )


def test_the_check_command_agrees_with_the_readme() -> None:
    check = [sys.executable, "-m", "clinpred.services.common.settings_reference", "--check", "README.md"]
    assert subprocess.run(check, cwd=REPO, capture_output=True, text=True).returncode == 0


def test_every_field_of_every_settings_class_is_listed_once_with_type_default_and_description() -> None:
    variables = [v for group in reference() for v in group.variables]
    names = [v.name for v in variables]
    assert len(names) == len(set(names))
    for pilot in ("TUMOR", "DETERIORATION", "GENOMICS"):
        for field in ("MODEL_NAME", "MODEL_VERSION", "MAX_BATCH_SIZE", "MAX_CONNECTION_AGE_SECONDS"):
            assert f"CLINPRED_{pilot}_{field}" in names
    assert {"CLINPRED_STATE_DIR", "CLINPRED_MODELS_ROOT", "CLINPRED_LOG_LEVEL", "CLINPRED_SECRETS_DIR"} <= set(names)
    assert all(v.type and v.default and len(v.description) > 20 for v in variables), [v for v in variables if not v.description]
    by_name = {v.name: v for v in variables}
    assert by_name["CLINPRED_GENOMICS_MAX_UPLOAD_BYTES"].default == "`536870912` (512 MiB)"
    assert by_name["CLINPRED_GENOMICS_MIN_OVERLAP"].type == "float, ≥ 0, ≤ 1"
    assert by_name["CLINPRED_TUMOR_POLICY_FILE"].default == "unset"
    # Serving pins a version: the default is the released one, never "whatever is highest".
    assert by_name["CLINPRED_TUMOR_MODEL_VERSION"].default == f"`{TumorSettings().model_version}`"
    # A checkout-relative default reads the same on every machine.
    assert by_name["CLINPRED_STATE_DIR"].default == "`<checkout>/var`"


def test_an_override_adds_its_note_to_the_base_description() -> None:
    by_name = {v.name: v for group in reference() for v in group.variables}
    tumor = by_name["CLINPRED_TUMOR_MAX_CONNECTION_AGE_GRACE_SECONDS"].description
    deterioration = by_name["CLINPRED_DETERIORATION_MAX_CONNECTION_AGE_GRACE_SECONDS"].description
    assert deterioration.startswith(tumor) and "WatchRisk" in deterioration


def test_every_setting_is_described_by_its_class() -> None:
    """A Field(description=...) or a comment above the field: the reference has no other source."""
    undescribed = [
        f"{settings.__name__}.{name}"
        for _title, settings in settings_reference._settings_classes()
        for name in settings.model_fields
        if not settings_reference._description(settings, name)
    ]
    assert undescribed == []


def test_every_clinpred_variable_read_directly_is_in_the_reference() -> None:
    read: dict[str, str] = {}
    for folder in ("cli", "services", "pilots", "tests", "bench"):
        for path in (REPO / folder).rglob("*.py"):
            for name in _DIRECT_READ.findall(path.read_text()):
                read.setdefault(name, str(path.relative_to(REPO)))
    assert "CLINPRED_SECRETS_DIR" in read  # the pattern finds what it is for
    unlisted = {name: where for name, where in read.items() if name not in known_variables()}
    assert unlisted == {}, "list these in settings_reference._READ_DIRECTLY"
    listed_directly = {v.name for group in settings_reference._READ_DIRECTLY.values() for v in group}
    assert listed_directly - set(read) == set(), "no longer read anywhere: remove from _READ_DIRECTLY"


def test_an_unknown_variable_is_named_with_the_closest_known_one_and_never_its_value() -> None:
    environ = {
        "CLINPRED_TUMOR_MAX_BATCH_SIZ": "5",
        "CLINPRED_DETERIORATION_DATABSE_URL": "postgresql://clinician:s3cr3t@db/risk",
        "CLINPRED_NOTHING_LIKE_IT": "x",
        "clinpred_state_dir": "/srv/clinpred",  # pydantic settings read names in any case
        "CLINPRED_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1/test",
        "CLINPRED_TEST_ANYTHING_ELSE": "1",
        "HOME": "/root",
    }
    messages = unknown_variable_messages(environ)
    assert messages == [
        "CLINPRED_DETERIORATION_DATABSE_URL is not a clinpred setting and is ignored"
        " (did you mean CLINPRED_DETERIORATION_DATABASE_URL?)",
        "CLINPRED_NOTHING_LIKE_IT is not a clinpred setting and is ignored (see the settings reference in README.md)",
        "CLINPRED_TUMOR_MAX_BATCH_SIZ is not a clinpred setting and is ignored (did you mean CLINPRED_TUMOR_MAX_BATCH_SIZE?)",
    ]
    assert not any("s3cr3t" in m for m in messages)


def test_the_warning_is_one_log_record_per_unknown_name(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="clinpred.settings"):
        warn_about_unknown_variables({"CLINPRED_TUMOR_MODEL_NAM": "x", "CLINPRED_GENOMICS_MIN_OVERLAPP": "0.5"})
    records = [r for r in caplog.records if r.name == "clinpred.settings"]
    assert [r.levelno for r in records] == [logging.WARNING, logging.WARNING]
    assert [r.getMessage().split()[0] for r in records] == ["CLINPRED_GENOMICS_MIN_OVERLAPP", "CLINPRED_TUMOR_MODEL_NAM"]


def test_the_block_is_replaced_between_the_markers_only() -> None:
    document = f"before\n{START_MARKER}\nold\n{END_MARKER}\nafter\n"
    assert replace_block(document, f"{START_MARKER}\nnew\n{END_MARKER}") == f"before\n{START_MARKER}\nnew\n{END_MARKER}\nafter\n"
    with pytest.raises(settings_reference.MissingMarkers):
        replace_block("no markers here", "x")
