"""A call whose caller stopped waiting stops its work: the server's CPU goes quiet after the deadline.

The VCF is large enough that reading it takes several seconds of CPU; the caller allows a fraction
of a second. Measured is CPU time of this process (the in-process server's), never wall-clock time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from clinpred.pilots.common.model_package import ModelPackage
from clinpred.pilots.genomics.scoring_file import ScoringFile
from clinpred.services.api.genomics.v1 import genomics_pb2
from clinpred.services.common.model_store import register_package
from clinpred.services.common.serving import start_inprocess_server
from clinpred.services.genomics.client import patient
from clinpred.services.genomics.service import genomics_mount
from clinpred.services.genomics.settings import GenomicsSettings
from tests.integration.genomics.conftest import Stub, vcf_text

SAMPLES = 10_000


@pytest.fixture(scope="module")
async def roomy_stub(breast_package: ModelPackage) -> AsyncIterator[Stub]:
    """A service that accepts a VCF of thousands of samples in one call (as a hospital's batch would send)."""
    register_package(breast_package)
    server, port = await start_inprocess_server(genomics_mount(GenomicsSettings(max_batch_size=20_000)))
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield Stub(channel)
    await server.stop(grace=None)


async def test_a_large_assessment_stops_once_the_deadline_passes(roomy_stub: Stub, pgs37: ScoringFile) -> None:
    layout_stub = roomy_stub
    vcf = vcf_text(pgs37, samples=SAMPLES)  # about 12.5 MB: seconds of reading, scoring and explaining
    request = genomics_pb2.AssessVcfRequest(
        assessment=genomics_pb2.Assessment(
            build=genomics_pb2.GENOME_BUILD_GRCH37,
            cancers=["breast"],
            patients=[patient(50, "female", sample_id=f"person-{k:03d}") for k in range(SAMPLES)],
        ),
        vcf=vcf,
    )
    try:
        await layout_stub.AssessVcf(request, timeout=0.3)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    else:
        raise AssertionError("a VCF this large cannot be assessed within half a second here")
    await asyncio.sleep(0.5)  # the work notices at its next check, within a few thousand lines
    window = 2.0
    cpu_before, started = time.process_time(), time.monotonic()
    await asyncio.sleep(window)
    busy = (time.process_time() - cpu_before) / (time.monotonic() - started)
    # Unstopped, reading, scoring and explaining go on for nobody: about half a core here for seconds.
    assert busy < 0.2, f"the server kept {busy:.0%} of a core busy after the caller's deadline"
    # And it still serves.
    answer = await layout_stub.ListScores(genomics_pb2.ListScoresRequest())
    assert answer.scores
