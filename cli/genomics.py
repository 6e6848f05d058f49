"""`clinpred train genomics`, `clinpred genomics ...` (offline) and `clinpred call genomics ...`."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from clinpred.cli.options import TlsOption, client_tls, fail, print_message
from clinpred.cli.services import register_models
from clinpred.cli.settings import CliSettings

genomics_app = typer.Typer(help="Polygenic scores offline, with the same code as the service.", no_args_is_help=True)
call_app = typer.Typer(help="Call the genomic risk service.", no_args_is_help=True)
DEFAULT_TARGET = "127.0.0.1:50053"


class Build(StrEnum):
    GRCh37 = "GRCh37"
    GRCh38 = "GRCh38"


class Sex(StrEnum):
    female = "female"
    male = "male"


VcfOption = Annotated[Path | None, typer.Option("--vcf", help="VCF file, plain or bgzipped.", dir_okay=False)]
BuildOption = Annotated[Build, typer.Option(help="Genome build of the VCF (checked against its header).")]
TargetOption = Annotated[str, typer.Option(help="host:port of the service.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the whole answer as JSON.")]


def train(
    pgs: Annotated[Path, typer.Option("--pgs", help="PGS Catalog scoring file (with allelefrequency_effect).")],
    cancer: Annotated[str, typer.Option(help="The cancer the score predicts, e.g. breast.")] = "breast",
    name: Annotated[str | None, typer.Option(help="Model name (default: <cancer>-<pgs id>).")] = None,
    version: Annotated[str | None, typer.Option(help="Package version (default: next minor).")] = None,
    cohort_size: Annotated[int, typer.Option(help="Simulated cohort size.")] = 120_000,
    reference_size: Annotated[int, typer.Option(help="Simulated reference population size.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Seed: training is deterministic.")] = 7,
    register: Annotated[bool, typer.Option(help="Register the package in the BentoML model store.")] = True,
) -> None:
    """Train the absolute-risk model of one cancer from a PGS Catalog score: simulated cohort, XGBoost, calibration."""
    from clinpred.pilots.common.errors import ClinpredError
    from clinpred.pilots.genomics.training import train_genomics

    settings = CliSettings()
    try:
        package = train_genomics(
            pgs, cancer=cancer, models_root=settings.models_root, name=name, version=version,
            cohort_size=cohort_size, reference_size=reference_size, seed=seed, progress=True,
        )
    except ClinpredError as error:
        raise fail(f"cannot train: {error.message}") from None
    typer.echo(f"model package {package.path} (sha256 {package.identity.sha256})")
    metrics = package.read_json("metrics.json")
    typer.echo(json.dumps({k: v for k, v in metrics.items() if isinstance(v, float)}, indent=2, sort_keys=True))
    if register:
        register_models(settings, "genomics")
        typer.echo("registered in the BentoML model store of the genomics service")


@genomics_app.command("score")
def score(
    vcf: Annotated[Path, typer.Option("--vcf", help="VCF file, plain or bgzipped; every sample is scored.", dir_okay=False)],
    pgs: Annotated[Path, typer.Option("--pgs", help="PGS Catalog scoring file, plain or gzipped.", dir_okay=False)],
    build: Annotated[Build | None, typer.Option(help="The VCF's genome build (default: from its header).")] = None,
    min_overlap: Annotated[float, typer.Option(help="Refuse the score below this share of matched variants.")] = 0.75,
    as_json: JsonOption = False,
) -> None:
    """Score every sample of a VCF offline (batch use), exactly as the service and plink2 --score do."""
    from clinpred.pilots.common.errors import ClinpredError
    from clinpred.pilots.genomics.scoring import score_vcf

    try:
        results = score_vcf(vcf, pgs, build=build.value if build else None, min_overlap=min_overlap)
    except ClinpredError as error:
        raise fail(f"cannot score: {error.message}") from None
    if as_json:
        typer.echo(json.dumps([_sample_score_json(r) for r in results], indent=2))
        return
    typer.echo("sample\tpgs_id\tscore_sum\tmatched\ttotal\tmissing\timputed")
    for r in results:
        typer.echo(
            f"{r.sample}\t{r.pgs_id}\t{r.score_sum:.6g}\t{r.variants_matched}\t{r.variants_total}"
            f"\t{r.variants_missing}\t{r.variants_imputed}"
        )


def _sample_score_json(result: Any) -> dict[str, Any]:
    return {
        "sample": result.sample,
        "pgs_id": result.pgs_id,
        "score_sum": result.score_sum,
        "variants_total": result.variants_total,
        "variants_matched": result.variants_matched,
        "variants_missing": result.variants_missing,
        "variants_imputed": result.variants_imputed,
        "unmatched": dict(result.overlap.unmatched),
        "top_variants": [
            {"variant_id": c.variant_id, "effect_allele": c.effect_allele, "effect_weight": c.effect_weight,
             "dosage": c.dosage, "imputed": c.imputed, "contribution": c.contribution}
            for c in result.top_variants(10)
        ],
    }


@genomics_app.command("example-vcf")
def example_vcf(
    output: Annotated[Path, typer.Argument(help="Where to write the VCF.", dir_okay=False)],
    samples: Annotated[int, typer.Option(help="Number of samples.", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the simulated genotypes.")] = 0,
    model: Annotated[str, typer.Option(help="Model package whose score's variants to simulate.")] = "breast-pgs000004",
) -> None:
    """Write a VCF with simulated genotypes at a model's score variants (in the package's build), for trying things."""
    from clinpred.pilots.common.model_package import latest_package
    from clinpred.pilots.genomics.cohort import ScoreDistribution
    from clinpred.pilots.genomics.encrypted import EncryptedScoreLayout
    from clinpred.services.genomics.client import simulated_vcf

    package = latest_package(CliSettings().models_root, "genomics", model)
    layout = EncryptedScoreLayout.from_json(package.read_json("score_layout.json"))
    reference = ScoreDistribution.from_json(package.read_json("reference_distribution.json"))
    build = str(package.metadata.get("genome_build") or "GRCh37")
    output.write_bytes(simulated_vcf(layout, build, samples=samples, seed=seed, reference=reference))
    typer.echo(f"wrote {output}: {samples} simulated sample(s) at the {len(layout)} variants of {layout.pgs_id}, {build}")


def _example_vcf_bytes(client: Any, seed: int) -> tuple[bytes | Path, str]:
    from clinpred.services.genomics.client import layout_of, reference_of, simulated_vcf
    from clinpred.services.genomics.codec import BUILD_NAMES

    first = client.list_scores().scores[0]
    published = client.score_layout(first.cancer)
    build = BUILD_NAMES[published.build]
    return simulated_vcf(layout_of(published), build, seed=seed, reference=reference_of(published)), build


@call_app.command("assess")
def assess(
    vcf: VcfOption = None,
    build: Annotated[Build | None, typer.Option(help="Genome build of the VCF (required with --vcf).")] = None,
    age: Annotated[float, typer.Option(help="Age in years.")] = 52.0,
    sex: Annotated[Sex, typer.Option(help="female or male.")] = Sex.female,
    family_history: Annotated[
        list[str] | None, typer.Option(help="A cancer with an affected first-degree relative; repeat for several.")
    ] = None,
    sample: Annotated[str, typer.Option(help="The VCF sample to assess (default: every sample).")] = "",
    cancer: Annotated[list[str] | None, typer.Option(help="Cancers to assess (default: all configured).")] = None,
    example: Annotated[bool, typer.Option(help="Send simulated genotypes at the score's variants instead of --vcf.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of --example.")] = 0,
    target: TargetOption = DEFAULT_TARGET,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
) -> None:
    """Risk per cancer for the samples of a VCF: score, percentile, absolute risk, top variants, SHAP."""
    import grpc

    from clinpred.services.genomics.client import GenomicsClient, patient

    if not example and vcf is None:
        raise typer.BadParameter("give --vcf FILE --build BUILD, or --example")
    if vcf is not None and build is None:
        raise typer.BadParameter("give --build GRCh37 or GRCh38 with --vcf")
    person = patient(age, sex.value, family_history or [], sample_id=sample)
    try:
        with GenomicsClient(target, tls=client_tls(tls_dir)) as client:
            if example:
                source, chosen_build = _example_vcf_bytes(client, seed)
            else:
                assert vcf is not None and build is not None
                source, chosen_build = vcf, build.value
            answer = client.assess(source, chosen_build, [person], cancers=cancer or [])
    except grpc.RpcError as error:
        raise fail(f"{error.code().name}: {error.details()}") from None
    if as_json:
        print_message(answer)
        return
    for assessed in answer.samples:
        for risk in assessed.risks:
            _print_risk(assessed.sample_id, risk)


def _print_risk(sample_id: str, risk: Any) -> None:
    interval = risk.risk_interval
    typer.echo(
        f"sample {sample_id}: {risk.cancer} cancer, {risk.horizon_years:g}-year risk {risk.absolute_risk:.2%}"
        f" (95% CI {interval.lower:.2%}-{interval.upper:.2%}), {risk.relative_risk:.2f} x the population average"
    )
    typer.echo(
        f"  {risk.score.pgs_id} score {risk.score_sum:.4f}, z {risk.z_score:+.2f}, percentile {risk.percentile:.1f};"
        f" {risk.variants.matched} of {risk.variants.total} variants matched, {risk.variants.imputed} imputed"
    )
    for reason in risk.explanation.top_reasons:
        typer.echo(f"  - {reason.text}")
    top = ", ".join(f"{v.variant_id} {v.contribution:+.3f}" for v in risk.top_variants[:3])
    typer.echo(f"  top variants: {top}")
    typer.echo(f"  model: {risk.model.name} {risk.model.version} sha256 {risk.model.sha256}")


@call_app.command("encrypted")
def encrypted(
    vcf: VcfOption = None,
    build: Annotated[Build, typer.Option(help="Genome build of the VCF.")] = Build.GRCh37,
    score_key: Annotated[str, typer.Option("--score", help="PGS id or cancer.")] = "breast",
    sample: Annotated[str | None, typer.Option(help="The VCF sample (default: the first).")] = None,
    age: Annotated[float, typer.Option(help="Age in years, for the local risk.")] = 52.0,
    sex: Annotated[Sex, typer.Option(help="female or male.")] = Sex.female,
    family_history: Annotated[bool, typer.Option(help="An affected first-degree relative.")] = False,
    example: Annotated[bool, typer.Option(help="Use simulated genotypes instead of --vcf.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of --example.")] = 0,
    target: TargetOption = DEFAULT_TARGET,
    tls_dir: TlsOption = None,
) -> None:
    """Homomorphic scoring: encrypt here, score on the server, decrypt and compute percentile and risk here."""
    import grpc

    from clinpred.pilots.common.model_package import list_packages
    from clinpred.services.genomics.client import GenomicsClient, layout_of, reference_of, simulated_vcf
    from clinpred.services.genomics.codec import BUILD_NAMES

    if not example and vcf is None:
        raise typer.BadParameter("give --vcf FILE, or --example")
    with GenomicsClient(target, tls=client_tls(tls_dir)) as client:
        try:
            if example:
                published = client.score_layout(score_key)
                build = Build(BUILD_NAMES[published.build])
                source: bytes | Path = simulated_vcf(
                    layout_of(published), build.value, seed=seed, reference=reference_of(published)
                )
            else:
                assert vcf is not None
                source = vcf
            result = client.score_encrypted(source, build.value, score_key, sample=sample)
        except grpc.RpcError as error:
            raise fail(f"{error.code().name}: {error.details()}") from None
    typer.echo(f"{result.pgs_id} ({result.cancer}): encrypted score decrypted here: {result.score_sum:.4f}"
               f" (local plaintext {result.plaintext.score_sum:.4f}); server time {result.server_seconds:.2f} s")
    typer.echo(f"  z {result.z_score:+.2f}, percentile {result.percentile:.1f} (published reference distribution)")
    local = [p for p in list_packages(CliSettings().models_root, "genomics") if p.identity.sha256 == result.model.sha256]
    if local:
        risk = result.risk(local[0], age, sex.value, family_history)
        typer.echo(f"  {risk.horizon_years:g}-year risk {risk.absolute_risk:.2%} (95% CI {risk.risk_interval[0]:.2%}-"
                   f"{risk.risk_interval[1]:.2%}), computed locally with {local[0].identity.name} {local[0].identity.version}")
    else:
        typer.echo(f"  no local copy of model {result.model.name} {result.model.version}: absolute risk not computed")


@call_app.command("scores")
def scores(target: TargetOption = DEFAULT_TARGET, tls_dir: TlsOption = None) -> None:
    """The configured scores and cancers."""
    from clinpred.services.genomics.client import GenomicsClient

    with GenomicsClient(target, tls=client_tls(tls_dir)) as client:
        print_message(client.list_scores())


@call_app.command("info")
def info(target: TargetOption = DEFAULT_TARGET, tls_dir: TlsOption = None) -> None:
    """The serving models: identity, schema, metrics."""
    from clinpred.services.genomics.client import GenomicsClient

    with GenomicsClient(target, tls=client_tls(tls_dir)) as client:
        print_message(client.model_info())
