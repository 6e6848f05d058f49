"""`clinpred bento build`: the command; the build itself is clinpred.cli.bento_build's (imported only
when a build runs, so other commands start without YAML, packaging or the settings)."""

from __future__ import annotations

import os
from enum import StrEnum
from typing import Annotated, Any

import typer

import clinpred
from clinpred.cli.options import JsonOption, print_json

PILOTS = ("tumor", "deterioration", "genomics")

bento_app = typer.Typer(help="Bentos (and through them, container images) of the services.", no_args_is_help=True)


BentoTarget = StrEnum("BentoTarget", [*PILOTS, "all"])  # type: ignore[misc]


@bento_app.command("build")
def build(
    service: Annotated[BentoTarget, typer.Argument(help="Which service, or all of them.")] = "all",  # type: ignore[assignment]
    version: Annotated[str, typer.Option(help="The Bentos' version: the image tag `bentoml containerize` gives.")] = (
        clinpred.__version__
    ),
    as_json: JsonOption = False,
) -> None:
    """Build the Bento clinpred-<service>:<version> of bento/<service>/bentofile.yaml in BENTOML_HOME.

    Registers the service's model packages there first. Each Bento holds the clinpred wheel, its
    locked requirements (env/python/requirements.txt), the models its bentofile lists, a CycloneDX
    SBOM (src/sbom.cdx.json) and the image's Dockerfile (env/docker/Dockerfile).
    --json: {"bentos": [{"service", "tag", "path", "dockerfile", "sbom"}, ...]}.
    """
    from clinpred.cli.bento_build import build_bento, release_files

    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")
    pilots = list(PILOTS) if service == "all" else [str(service)]
    built: list[dict[str, Any]] = []
    with release_files() as shared:
        bentos = [build_bento(pilot, shared, version) for pilot in pilots]
    for bento in bentos:
        built.append(
            {
                "service": bento.pilot,
                "tag": bento.tag,
                "path": str(bento.path),
                "dockerfile": str(bento.dockerfile),
                "sbom": str(bento.sbom),
            }
        )
        if not as_json:
            typer.echo(f"built {bento.tag} at {bento.path}")
    if as_json:
        print_json({"bentos": built})
