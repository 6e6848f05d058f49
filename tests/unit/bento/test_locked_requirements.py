"""The Bentos' requirements: pyproject.toml's, locked at the versions this environment has."""

from __future__ import annotations

import importlib.metadata

import pytest
from packaging.requirements import Requirement

from clinpred.cli.bento_build import MissingRequirement, locked_requirements, project_requirements


def test_the_lock_holds_every_pin_of_pyproject_and_their_dependencies() -> None:
    locked = dict(line.split("==") for line in locked_requirements(project_requirements()))
    assert locked["grpcio"] == "1.71.2" == importlib.metadata.version("grpcio")
    assert locked["bentoml"] == importlib.metadata.version("bentoml")
    # A dependency of a dependency is locked too.
    assert locked["simple-di"] == importlib.metadata.version("simple-di")
    # bentoml[grpc] brings what its grpc extra names, and nothing of its other extras.
    assert "opentelemetry-instrumentation-grpc" in locked and "grpcio-channelz" not in locked
    assert "pytest" not in locked


def test_an_extra_brings_the_packages_it_names_and_no_extra_brings_none() -> None:
    plain = {line.split("==")[0] for line in locked_requirements([Requirement("pydantic-settings")])}
    with_yaml = {line.split("==")[0] for line in locked_requirements([Requirement("pydantic-settings[yaml]")])}
    assert "pydantic" in plain and "pyyaml" not in plain
    assert with_yaml - plain == {"pyyaml"}


@pytest.mark.parametrize(
    ("requirement", "reason"),
    [("numpy==0.0.1", "numpy==0.0.1 is required, numpy 2."), ("clinpred-no-such-package==1", "is not installed")],
)
def test_an_environment_that_does_not_satisfy_pyproject_is_refused(requirement: str, reason: str) -> None:
    with pytest.raises(MissingRequirement) as refused:
        locked_requirements([Requirement(requirement)])
    assert reason in str(refused.value)
