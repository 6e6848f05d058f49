"""What the processes of `bentoml serve-grpc` log: the level of CLINPRED_LOG_LEVEL, and no health checks at INFO.

BentoML configures its processes' logging before it imports the service (API workers)
or the metrics server, and knows only INFO, DEBUG (--verbose) and ERROR (--quiet);
so the service module applies the level here, after BentoML and before the gRPC
server is built. BentoML's access log is on only with CLINPRED_ACCESS_LOG (`services.common.serving`).
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
HEALTH_SERVICE_PATH = "/grpc.health.v1.Health/"
# BentoML's gRPC access log (bentoml.grpc.interceptors.access) writes "path=/service/Method".
_HEALTH_PATH_FIELD = f"path={HEALTH_SERVICE_PATH}"


class LogSettings(BaseSettings):
    """How much served processes log (environment prefix CLINPRED_)."""

    model_config = SettingsConfigDict(env_prefix="CLINPRED_", extra="ignore")

    log_level: LogLevel = Field(
        default="info",
        description="How much the served processes log: debug, info (clinpred's own INFO lines such as the model "
        "loaded; with CLINPRED_ACCESS_LOG, BentoML's access log too), warning, error or critical. "
        "`clinpred serve --log-level` sets it.",
    )
    access_log: bool = Field(
        default=False,
        description="BentoML's access log: a line per unary call at INFO (method, status, time; health checks "
        "excepted), and the OpenTelemetry spans it reads the status from. Off by default: the audit trail already "
        "records every call durably and the metrics count and time them, and the two BentoML interceptors cost "
        "about a fifth of a call's server CPU.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_case(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


def checked_log_level(level: str) -> LogLevel:
    """`level` as a LogLevel (any case); ValueError naming the levels when it is none."""
    lowered = level.lower()
    for known in get_args(LogLevel):
        if lowered == known:
            return known
    raise ValueError(f"log level must be one of {', '.join(get_args(LogLevel))}")


class HealthChecksBelowInfo(logging.Filter):
    """Turns access-log records of grpc.health.v1 calls into DEBUG records: probes call every few
    seconds, and at INFO their lines would bury the calls that matter."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or _HEALTH_PATH_FIELD not in record.getMessage():
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def configure_server_logs(level: LogLevel) -> None:
    """Applies `level` to clinpred's and BentoML's loggers in this process, and quiets health checks."""
    number = logging.getLevelNamesMapping()[level.upper()]
    for name in ("clinpred", "bentoml"):
        logging.getLogger(name).setLevel(number)
    # Libraries (circus, uvicorn, asyncio) stay at WARNING, as BentoML sets them, unless asked for less.
    for name in ("circus", ""):
        logger = logging.getLogger(name)
        logger.setLevel(max(number, logging.WARNING))
    access = logging.getLogger("bentoml.access")
    if not any(isinstance(f, HealthChecksBelowInfo) for f in access.filters):
        access.addFilter(HealthChecksBelowInfo())
