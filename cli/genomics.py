"""`clinpred train genomics`, `clinpred genomics ...` (offline) and `clinpred call genomics ...`.

Options that several commands share mean the same everywhere:
- `--build GRCh37|GRCh38`: the VCF's genome build; optional, read from the VCF header
  (##contig lengths, else ##reference) when omitted. A declared build is checked against the header.
- `--relatives CANCER=N`: N first-degree relatives had CANCER; repeat for several cancers.
- `--family-history CANCER`: deprecated, the same as `--relatives CANCER=1`.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from clinpred.cli.options import (
    InsecureOption,
    JsonOption,
    SealedOption,
    TargetOption,
    TimeoutOption,
    TlsOption,
    client_tls,
    default_target,
    print_json,
    print_json_list,
    print_message,
    print_metrics,
    print_training_result,
)
from clinpred.cli.services import register_models
from clinpred.pilots.common.errors import FailedPrecondition, FieldViolation, InvalidInput

if TYPE_CHECKING:
    from clinpred.pilots.genomics.absolute_risk import RiskAnswer
    from clinpred.pilots.genomics.batch_scoring import CohortScores
    from clinpred.pilots.genomics.scoring import SampleScore
    from clinpred.pilots.genomics.scoring_file import ScoringFile
    from clinpred.services.api.genomics.v1 import genomics_pb2
    from clinpred.services.genomics.client import EncryptedScoreResult, GenomicsClient

genomics_app = typer.Typer(help="Polygenic scores offline, with the same code as the service.", no_args_is_help=True)
call_app = typer.Typer(help="Call the genomic risk service.", no_args_is_help=True)
DEFAULT_TARGET = default_target("genomics")
DEFAULT_TIMEOUT = 120.0


class Build(StrEnum):
    GRCh37 = "GRCh37"
    GRCh38 = "GRCh38"


class Sex(StrEnum):
    female = "female"
    male = "male"


VcfOption = Annotated[
    Path | None, typer.Option("--vcf", help="VCF file, plain or bgzipped.", exists=True, dir_okay=False, readable=True)
]
BuildOption = Annotated[
    Build | None,
    typer.Option("--build", help="Genome build of the VCF (default: from its header; a declared build is checked)."),
]
FamilyHistoryOption = Annotated[
    list[str] | None,
    typer.Option("--family-history", help="Deprecated: a cancer one first-degree relative had (= --relatives CANCER=1)."),
]
RelativesOption = Annotated[
    list[str] | None,
    typer.Option("--relatives", help="CANCER=N: N affected first-degree relatives (e.g. breast=2); repeat for several."),
]
AgeOption = Annotated[float, typer.Option(help="Age in years.")]
SexOption = Annotated[Sex, typer.Option(help="female or male.")]
SeedOption = Annotated[int, typer.Option(help="Seed of --example.")]


def train(
    pgs: Annotated[Path, typer.Option("--pgs", help="PGS Catalog scoring file (with allelefrequency_effect).")],
    cancer: Annotated[str, typer.Option(help="The cancer the score predicts, e.g. breast.")] = "breast",
    calibration: Annotated[
        Path | None,
        typer.Option(help="JSON of the cancer's published figures (CalibrationTargets); breast has them built in.",
                     exists=True, dir_okay=False, readable=True),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Model name (default: <cancer>-<pgs id>).")] = None,
    version: Annotated[
        str | None, typer.Option("--package-version", help="Version of the new package (default: the next minor).")
    ] = None,
    cohort_size: Annotated[int, typer.Option(help="Simulated women of the pipeline check.")] = 60_000,
    reference_size: Annotated[int, typer.Option(help="Simulated reference population size.")] = 50_000,
    seed: Annotated[int, typer.Option(help="Seed: training is deterministic.")] = 7,
    register: Annotated[bool, typer.Option(help="Register the package in the BentoML model store.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Build the absolute-risk model of one cancer from a PGS Catalog score, calibrated to registry figures.

    Published effect sizes (OR per SD, family-history relative risks), baseline incidence solved to match the
    registry's risk at every age, competing mortality; a simulated cohort checks the pipeline. Progress goes to
    standard error. --json: {"package": {"pilot", "name", "version", "sha256", "path"},
    "metrics": {NAME: NUMBER} (the headline figures of metrics.json), "registered": BOOL}.
    """
    from clinpred.cli.settings import CliSettings
    from clinpred.pilots.genomics.registry import CalibrationTargets
    from clinpred.pilots.genomics.training import train_genomics

    settings = CliSettings()
    package = train_genomics(
        pgs,
        cancer=cancer,
        models_root=settings.models_root,
        name=name,
        version=version,
        targets=CalibrationTargets.read(calibration) if calibration is not None else None,
        cohort_size=cohort_size,
        reference_size=reference_size,
        seed=seed,
        progress=True,
    )
    metrics = package.read_json("metrics.json")
    headline = {k: v for k, v in metrics.items() if isinstance(v, float)}
    if register:
        register_models(settings, "genomics")
    print_training_result("genomics", package, headline, register, as_json)


TOP_VARIANTS = 10


@genomics_app.command("score")
def score(
    vcf: Annotated[
        Path | None,
        typer.Option("--vcf", help="VCF file, plain or bgzipped; every sample is scored.", exists=True, dir_okay=False),
    ] = None,
    pgen: Annotated[
        Path | None,
        typer.Option(
            "--pgen",
            help="plink2 fileset PREFIX (PREFIX.pgen, .pvar, .psam) instead of --vcf; every sample is scored.",
        ),
    ] = None,
    pgs: Annotated[
        Path | None,
        typer.Option(
            "--pgs",
            help="PGS Catalog scoring file, plain or gzipped (default: the score layout of --model, in its build).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="Model package whose score layout to use without --pgs.")] = "breast-pgs000004",
    build: BuildOption = None,
    min_overlap: Annotated[float, typer.Option(help="Refuse the score below this share of matched variants.")] = 0.75,
    as_json: JsonOption = False,
) -> None:
    """Score every sample of a VCF or plink2 fileset offline (batch use), exactly as the service and plink2 --score do.

    Prints a tab-separated table. --json: {"scores": [{"sample", "pgs_id", "score_sum", "variants_total",
    "variants_matched", "variants_missing", "variants_imputed", "unmatched": {REASON: N},
    "top_variants": [{"variant_id", "effect_allele", "effect_weight", "dosage", "imputed", "contribution"}]}]}.
    """
    from clinpred.pilots.genomics.batch_scoring import score_cohort_pgen, score_cohort_vcf

    if (vcf is None) == (pgen is None):
        raise InvalidInput.of([FieldViolation("--vcf", "give either --vcf FILE or --pgen PREFIX")])
    build_name = build.value if build else None
    scoring: Path | ScoringFile = pgs if pgs is not None else _package_scoring_file(model, build_name)
    # The table prints no per-variant contributions; JSON prints the top ones of each sample only.
    top = TOP_VARIANTS if as_json else None
    if vcf is not None:
        scores = score_cohort_vcf(vcf, scoring, build=build_name, min_overlap=min_overlap, top=top)
    else:
        scores = score_cohort_pgen(str(pgen), scoring, build=build_name, min_overlap=min_overlap, top=top)
    if as_json:
        print_json_list("scores", (_sample_score_json(r) for r in scores.sample_scores()))
        return
    _print_table(scores)


def _print_table(scores: CohortScores) -> None:
    """One line per sample, written in blocks: a cohort's table is built without a Python object per sample."""
    out = sys.stdout
    out.write("sample\tpgs_id\tscore_sum\tmatched\ttotal\tmissing\timputed\n")
    fixed = f"\t{scores.overlap.matched}\t{scores.overlap.total}\t"
    pgs_id = scores.scoring_file.pgs_id
    block = 8192
    for start in range(0, len(scores.samples), block):
        end = start + block
        sums = scores.score_sums[start:end].tolist()
        missing = scores.variants_missing[start:end].tolist()
        imputed = scores.variants_imputed[start:end].tolist()
        out.write("".join(
            f"{sample}\t{pgs_id}\t{total:.6g}{fixed}{m}\t{i}\n"
            for sample, total, m, i in zip(scores.samples[start:end], sums, missing, imputed, strict=True)
        ))
    out.flush()


def _package_scoring_file(model: str, build: str | None) -> ScoringFile:
    """The model package's score layout as a scoring file; it exists in the package's build only."""
    from clinpred.cli.settings import CliSettings
    from clinpred.pilots.common.model_package import latest_package
    from clinpred.pilots.genomics.score_layout import EncryptedScoreLayout, layout_scoring_file

    package = latest_package(CliSettings().models_root, "genomics", model)
    package_build = str(package.metadata.get("genome_build") or "GRCh37")
    if build is not None and build != package_build:
        raise InvalidInput.of(
            [FieldViolation("--build", f"{model}'s score layout is in {package_build}; give --pgs for {build}")]
        )
    layout = EncryptedScoreLayout.from_json(package.read_json("score_layout.json"))
    return layout_scoring_file(layout, package_build, f"{layout.pgs_id} ({model} score layout)")


def _sample_score_json(result: SampleScore) -> dict[str, Any]:
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
            {
                "variant_id": c.variant_id,
                "effect_allele": c.effect_allele,
                "effect_weight": c.effect_weight,
                "dosage": c.dosage,
                "imputed": c.imputed,
                "contribution": c.contribution,
            }
            for c in result.top_variants(TOP_VARIANTS)
        ],
    }


@genomics_app.command("example-vcf")
def example_vcf(
    output: Annotated[Path, typer.Argument(help="Where to write the VCF.", dir_okay=False)],
    samples: Annotated[int, typer.Option(help="Number of samples.", min=1)] = 1,
    seed: Annotated[int, typer.Option(help="Seed of the simulated genotypes.")] = 0,
    model: Annotated[str, typer.Option(help="Model package whose score's variants to simulate.")] = "breast-pgs000004",
    as_json: JsonOption = False,
) -> None:
    """Write a VCF with simulated genotypes at a model's score variants (in the package's build), for trying things.

    --json: {"path": PATH, "samples": N, "variants": N, "pgs_id": ID, "build": BUILD}.
    """
    from clinpred.cli.settings import CliSettings
    from clinpred.pilots.common.model_package import latest_package
    from clinpred.pilots.genomics.example_vcf import simulated_vcf
    from clinpred.pilots.genomics.package_format import ScoreDistribution
    from clinpred.pilots.genomics.score_layout import EncryptedScoreLayout

    package = latest_package(CliSettings().models_root, "genomics", model)
    layout = EncryptedScoreLayout.from_json(package.read_json("score_layout.json"))
    reference = ScoreDistribution.from_json(package.read_json("reference_distribution.json"))
    build = str(package.metadata.get("genome_build") or "GRCh37")
    output.write_bytes(simulated_vcf(layout, build, samples=samples, seed=seed, reference=reference))
    if as_json:
        print_json({"path": str(output), "samples": samples, "variants": len(layout), "pgs_id": layout.pgs_id, "build": build})
        return
    typer.echo(f"wrote {output}: {samples} simulated sample(s) at the {len(layout)} variants of {layout.pgs_id}, {build}")


def vcf_build(vcf: Path, declared: Build | None) -> tuple[str, tuple[str, ...]]:
    """The VCF's build (declared, checked against its header, or read from the header) and its samples.

    Reads the header only. The domain's own parser judges it, so the build is found and checked exactly
    as the service does: a declared build the header contradicts is FAILED_PRECONDITION.
    """
    from clinpred.pilots.genomics.text_stream import read_lines
    from clinpred.pilots.genomics.vcf import read_vcf

    header: list[str] = []
    for line in read_lines(vcf):
        header.append(line.text + "\n")
        if line.text.startswith("#CHROM") or not line.text.startswith("##"):
            break
    genotypes = read_vcf(header, name=vcf.name, declared_build=declared.value if declared else None)
    if genotypes.build is None:
        raise typer.BadParameter(
            "the VCF header shows no build (no ##contig lengths or ##reference); give --build GRCh37 or GRCh38",
            param_hint="--build",
        )
    return genotypes.build, genotypes.samples


def _source(vcf: Path | None, example: bool) -> Path | None:
    if example == (vcf is not None):
        raise typer.BadParameter("give either --vcf FILE or --example", param_hint="--vcf")
    return vcf


def _client(target: str, timeout: float, tls_dir: Path | None, insecure_development: bool, sealed: bool) -> GenomicsClient:
    from clinpred.services.genomics.client import GenomicsClient

    return GenomicsClient(target, timeout=timeout, tls=client_tls(tls_dir, insecure_development), sealed=sealed)


def _build_name(build: int) -> str:
    from clinpred.services.api.genomics.v1 import genomics_pb2

    return genomics_pb2.GenomeBuild.Name(build).removeprefix("GENOME_BUILD_").replace("GRCH", "GRCh")


def _example_vcf(published: genomics_pb2.GetScoreLayoutResponse, seed: int) -> tuple[bytes, str]:
    from clinpred.pilots.genomics.example_vcf import simulated_vcf
    from clinpred.services.genomics.client import layout_of, reference_of

    build = _build_name(published.build)
    return simulated_vcf(layout_of(published), build, seed=seed, reference=reference_of(published)), build


@call_app.command("assess")
def assess(
    vcf: VcfOption = None,
    build: BuildOption = None,
    age: AgeOption = 52.0,
    sex: SexOption = Sex.female,
    relatives: RelativesOption = None,
    family_history: FamilyHistoryOption = None,
    sample: Annotated[str, typer.Option(help="The VCF sample to assess (default: every sample).")] = "",
    cancer: Annotated[list[str] | None, typer.Option(help="Cancers to assess; repeat for several (default: all).")] = None,
    example: Annotated[bool, typer.Option(help="Send simulated genotypes at the score's variants instead of --vcf.")] = False,
    seed: SeedOption = 0,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Risk per cancer for the samples of a VCF: score, percentile, absolute risk, top variants, reasons (AssessVcf).

    Large VCFs go up as a streamed upload (AssessVcfUpload). --json: the AssessVcfResponse.
    """
    from clinpred.services.api.genomics.v1 import genomics_pb2
    from clinpred.services.genomics.client import patient

    path = _source(vcf, example)
    if example and build is not None:
        raise typer.BadParameter("--example uses the build of the published score; leave out --build", param_hint="--build")
    person = patient(age, sex.value, _relatives(relatives, family_history), sample_id=sample)
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        if path is None:
            published = client.score_layout(client.list_scores().scores[0].cancer)
            source, chosen_build = _example_vcf(published, seed)
            answer = client.assess(source, chosen_build, [person], cancers=cancer or [])
        else:
            answer = client.assess(path, vcf_build(path, build)[0], [person], cancers=cancer or [])
    if as_json:
        print_message(genomics_pb2.AssessVcfResponse(assessment=answer))
        return
    typer.echo(f"VCF in {_build_name(answer.build)} ({answer.build_evidence}), {answer.vcf_samples} sample(s)")
    for assessed in answer.samples:
        for risk in assessed.risks:
            _print_risk(assessed.sample_id, risk)


def _print_risk(sample_id: str, risk: genomics_pb2.CancerRisk) -> None:
    interval = risk.risk_interval
    typer.echo(
        f"sample {sample_id}: {risk.cancer} cancer, {risk.horizon_years:g}-year risk {risk.absolute_risk:.2%}"
        f" (95% CI {interval.lower:.2%}-{interval.upper:.2%}), {risk.relative_risk:.2f} x the population average"
    )
    typer.echo(
        f"  {risk.score.pgs_id} score {risk.score_sum:.4f}, z {risk.z_score:+.2f}, percentile {risk.percentile:.1f};"
        f" {risk.variants.matched} of {risk.variants.total} variants matched, {risk.variants.imputed} imputed"
    )
    if risk.score_effect_note:
        typer.echo(f"  {risk.score_effect_note}")
    for reason in risk.explanation.top_reasons:
        typer.echo(f"  - {reason.text}")
    top = ", ".join(f"{v.variant_id} {v.contribution:+.3f}" for v in risk.top_variants[:3])
    typer.echo(f"  top variants: {top}")
    typer.echo(f"  model: {risk.model.name} {risk.model.version} sha256 {risk.model.sha256}")


@call_app.command("encrypted")
def encrypted(
    vcf: VcfOption = None,
    build: BuildOption = None,
    score_key: Annotated[str, typer.Option("--score", help="PGS id or cancer.")] = "breast",
    sample: Annotated[str | None, typer.Option(help="The VCF sample (default: the first).")] = None,
    age: AgeOption = 52.0,
    sex: SexOption = Sex.female,
    relatives: RelativesOption = None,
    family_history: FamilyHistoryOption = None,
    example: Annotated[bool, typer.Option(help="Use simulated genotypes instead of --vcf.")] = False,
    seed: SeedOption = 0,
    keys: Annotated[
        Path | None,
        typer.Option(
            help="File keeping this client's CKKS keys (secret key included, mode 0600), made on first use;"
            " reusing it reuses their registration on the server (default: new keys, registered again).",
            dir_okay=False,
        ),
    ] = None,
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """Homomorphic scoring: encrypt here, score on the server, decrypt and compute percentile and risk here.

    Uses GetScoreLayout, RegisterEvaluationKeys (once per set of keys and replica: about 35 MB),
    ScoreEncrypted (the ciphertexts and the keys' SHA-256) and GetModelInfo, whose published risk
    parameters (checked against the model's SHA-256) give the absolute risk here; no local model package
    is needed. A private score answers the total only: no top variants.
    --json: {"pgs_id", "cancer", "score_sum" (decrypted), "plaintext_score_sum" (scored locally), "z_score",
    "percentile", "server_seconds", "bytes_sent", "bytes_received", "private_weights", "registered_keys",
    "variants": {"total", "matched", "missing", "imputed"},
    "top_variants": [{"variant_id", "contribution"}], "model": {"name", "version", "sha256"},
    "risk": {"horizon_years", "absolute_risk", "risk_interval": [LOW, HIGH], "population_average_risk",
    "odds_ratio_per_sd", "unmeasured_variance_fraction", "score_effect_note"} or null (the model publishes
    no risk parameters), "risk_problem": why not computed, or null}.
    """
    from clinpred.services.genomics.client import published_parameters

    path = _source(vcf, example)
    if example and build is not None:
        raise typer.BadParameter("--example uses the build of the published score; leave out --build", param_hint="--build")
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        published = client.score_layout(score_key)
        published_build = _build_name(published.build)
        if path is None:
            source: bytes | Path
            source, chosen_build = _example_vcf(published, seed)
        else:
            chosen_build, samples = vcf_build(path, build)
            source = path
            if sample is not None and sample not in samples:
                raise InvalidInput.of([FieldViolation("--sample", "is not a sample of the VCF")])
            if chosen_build != published_build:
                raise FailedPrecondition(
                    f"the VCF is in {chosen_build} but the server publishes {published.pgs_id} in {published_build};"
                    " give a VCF in that build"
                )
        from clinpred.services.genomics.client import ClientKeys

        if keys is not None:
            client.use_keys(ClientKeys.load_or_create(keys))
        result = client.score_encrypted(source, chosen_build, score_key, sample=sample)
        served = [m for m in client.model_info().models if m.model.sha256 == result.model.sha256]
    risk: RiskAnswer | None = None
    problem = f"the server no longer serves model {result.model.name} {result.model.version}"
    if served and served[0].risk_parameters_json:
        count = _relatives(relatives, family_history).get(result.cancer, 0)
        risk = result.risk(published_parameters(served[0]), age, sex.value, count)
    elif served:
        problem = f"model {result.model.name} {result.model.version} publishes no risk parameters"
    if as_json:
        print_json({**_encrypted_json(result, risk), "risk_problem": None if risk is not None else problem})
        return
    typer.echo(
        f"{result.pgs_id} ({result.cancer}): encrypted score decrypted here: {result.score_sum:.4f}"
        + ("" if result.layout.private else f" (local plaintext {result.plaintext.score_sum:.4f})")
        + f"; call {result.server_seconds:.2f} s, {result.bytes_sent:,} bytes sent, {result.bytes_received:,} received"
    )
    typer.echo(f"  z {result.z_score:+.2f}, percentile {result.percentile:.1f} (published reference distribution)")
    if risk is not None:
        typer.echo(
            f"  {risk.horizon_years:g}-year risk {risk.absolute_risk:.2%} (95% CI {risk.risk_interval[0]:.2%}-"
            f"{risk.risk_interval[1]:.2%}), computed here with the published parameters of {result.model.name}"
            f" {result.model.version}"
        )
        typer.echo(f"  {risk.score_effect_note}")
    else:
        typer.echo(f"  {problem}: absolute risk not computed")


def _relatives(relatives: list[str] | None, family_history: list[str] | None) -> dict[str, int]:
    """--relatives CANCER=N and the deprecated --family-history CANCER (one relative) as cancer -> count."""
    counts = {cancer: 1 for cancer in family_history or []}
    for item in relatives or []:
        cancer, _, number = item.partition("=")
        if not cancer or not number.isdigit():
            raise typer.BadParameter(f"{item!r} is not CANCER=N with N a whole number", param_hint="--relatives")
        counts[cancer] = int(number)
    return counts


def _encrypted_json(result: EncryptedScoreResult, risk: RiskAnswer | None) -> dict[str, Any]:
    plain = result.plaintext
    model = {"name": result.model.name, "version": result.model.version, "sha256": result.model.sha256}
    return {
        "pgs_id": result.pgs_id,
        "cancer": result.cancer,
        "score_sum": result.score_sum,
        "plaintext_score_sum": None if result.layout.private else plain.score_sum,
        "z_score": result.z_score,
        "percentile": result.percentile,
        "server_seconds": result.server_seconds,
        "bytes_sent": result.bytes_sent,
        "bytes_received": result.bytes_received,
        "private_weights": result.layout.private,
        "registered_keys": result.registered_keys,
        "variants": {
            "total": plain.variants_total,
            "matched": plain.variants_matched,
            "missing": plain.variants_missing,
            "imputed": plain.variants_imputed,
        },
        "top_variants": [{"variant_id": v, "contribution": c} for v, c in result.top_variants(10)],
        "model": model,
        "risk": None
        if risk is None
        else {
            "horizon_years": risk.horizon_years,
            "absolute_risk": risk.absolute_risk,
            "risk_interval": list(risk.risk_interval),
            "population_average_risk": risk.population_average_risk,
            "odds_ratio_per_sd": risk.odds_ratio_per_sd,
            "unmeasured_variance_fraction": risk.unmeasured_variance_fraction,
            "score_effect_note": risk.score_effect_note,
        },
    }


@call_app.command("layout")
def layout(
    score_key: Annotated[str, typer.Argument(metavar="SCORE", help="PGS id or cancer, e.g. PGS000004 or breast.")],
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """The published variant order, weights and reference distribution of a score (GetScoreLayout).

    What an encrypting client needs; --json: the GetScoreLayoutResponse (every variant).
    """
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.score_layout(score_key)
    if as_json:
        print_message(answer)
        return
    reference = answer.reference
    typer.echo(f"{answer.pgs_id} ({answer.cancer}): {len(answer.variant_ids)} variants in {_build_name(answer.build)}")
    typer.echo(
        f"reference distribution: mean {reference.mean:.4f}, sd {reference.sd:.4f}, "
        f"{len(reference.quantiles)} quantiles, {reference.sample_size} people"
    )
    degrees = ", ".join(str(d) for d in answer.poly_modulus_degrees)
    typer.echo(f"CKKS: poly_modulus_degree {degrees}; scale at least 2^{answer.min_scale_bits}")
    for variant_id, allele, weight in list(zip(answer.variant_ids, answer.effect_alleles, answer.weights))[:5]:
        typer.echo(f"  {variant_id}\teffect allele {allele}\tweight {weight:+.4f}")
    if len(answer.variant_ids) > 5:
        typer.echo(f"  ... and {len(answer.variant_ids) - 5} more (--json lists them all)")
    typer.echo(f"model: {answer.model.name} {answer.model.version} sha256 {answer.model.sha256}")


@call_app.command("scores")
def scores(
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """The configured scores and cancers (ListScores). --json: the ListScoresResponse."""
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.list_scores()
    if as_json:
        print_message(answer)
        return
    typer.echo("cancer\tpgs_id\tvariants\tbuilds\thorizon\tmodel")
    for item in answer.scores:
        builds = ",".join(_build_name(b) for b in item.builds) or "-"
        model = f"{item.model.name} {item.model.version}" if item.model.name else "-"
        problem = f"\tPROBLEM: {item.problem}" if item.problem else ""
        typer.echo(f"{item.cancer}\t{item.score.pgs_id}\t{item.variants}\t{builds}\t{item.horizon_years:g} y\t{model}{problem}")
    typer.echo(f"uploads up to {answer.max_upload_bytes} bytes")


@call_app.command("info")
def info(
    target: TargetOption = DEFAULT_TARGET,
    timeout: TimeoutOption = DEFAULT_TIMEOUT,
    as_json: JsonOption = False,
    tls_dir: TlsOption = None,
    insecure_development: InsecureOption = False,
    sealed: SealedOption = False,
) -> None:
    """The serving models: identity, score, horizon, metrics (GetModelInfo). --json: the GetModelInfoResponse."""
    with _client(target, timeout, tls_dir, insecure_development, sealed) as client:
        answer = client.model_info()
    if as_json:
        print_message(answer)
        return
    for model in answer.models:
        identity = model.model
        typer.echo(f"{model.cancer}: {identity.name} {identity.version} sha256 {identity.sha256}")
        typer.echo(
            f"  {model.pgs_id}, {model.horizon_years:g}-year risk with {model.interval_level:.0%} intervals, "
            f"inputs: {', '.join(f.name for f in model.features)}"
        )
        print_metrics(model.metrics)
    typer.echo(f"uploads up to {answer.max_upload_bytes} bytes")
