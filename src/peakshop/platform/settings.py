"""Typed settings read from `PEAKSHOP_*` environment variables, validated at start.

Each service has a section of its own (`PEAKSHOP_CATALOG_*`, …) declared next to its code; this module
holds the shared section and the loader they all use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

T = TypeVar("T", bound=msgspec.Struct)


class SettingsError(ValueError):
    """A setting is missing, malformed or unsafe; the process refuses to start."""


def from_env(cls: type[T], prefix: str, environ: Mapping[str, str] | None = None, **overrides: Any) -> T:
    """Build `cls` from `prefix + FIELD` variables; unset variables keep the declared default."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        name = f"{prefix}{field.name.upper()}"
        if name in env:
            raw[field.name] = env[name]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return msgspec.convert(raw, cls, strict=False, dec_hook=_from_text)
    except msgspec.ValidationError as exc:
        # msgspec names the field as `$.field`; say which variable that is.
        message = str(exc)
        for field in msgspec.structs.fields(cls):
            message = message.replace(f"`$.{field.name}`", f"{prefix}{field.name.upper()}")
        raise SettingsError(message) from exc


def _from_text(type_: type, value: Any) -> Any:
    # msgspec converts numbers and booleans from strings itself; paths need a word from us.
    if type_ is Path and isinstance(value, str | Path):
        return Path(value)
    raise NotImplementedError(f"cannot read {type_!r} from the environment")


Topology = Literal["local", "split", "kube"]


class PlatformSettings(msgspec.Struct, kw_only=True, frozen=True):
    """Settings every process shares (`PEAKSHOP_*`)."""

    topology: Topology = "local"
    data_dir: Path = Path(".peakshop")
    postgres_url: str = "postgresql://postgres@127.0.0.1:5432/test"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # How long connecting to Redis, or one of its answers, may take before the cache counts as away
    # (reads become misses, writes are skipped); a server that does not answer must not hold requests.
    redis_timeout_seconds: float = 1.0
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    db_pool_size: int = 10
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "console"] = "json"
    max_body_bytes: int = 65_536
    drain_seconds: float = 0.0
    seed_products: int = 10_000
    seed: int = 42
    webhook_secret: str = "peakshop-dev-webhook-secret"
    http_client_timeout: float = 10.0
    # How long a service call keeps trying a refused connection (the callee down, or starting again
    # after a crash) before it gives up with 503; nothing was sent, so any method may wait.
    http_connect_patience_seconds: float = 3.0
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # RabbitMQ deletes a consumer's queue unused for this many seconds; 0 keeps queues forever.
    queue_expires_seconds: float = 0
    # Prefix of Redis keys and RabbitMQ exchange/queue names, so that shops can share those servers.
    namespace: str = "peakshop"
    # How long a consumer remembers a message id it handled (its inbox), so that a redelivery or a
    # republished event is not handled twice; far longer than any redelivery takes.
    inbox_retention_seconds: float = 7 * 86_400
    # How long an outbox relay waits, once a commit has woken it, for more events to publish in the
    # same round. Each round costs a transaction and a broker round trip whatever it carries, so at
    # peak a longer wait spends much less per event; each event waits at most this much longer.
    outbox_linger_seconds: float = 0.05
    # `peakshop up` asks each process of a multi-process shop for /healthz every period; one that
    # leaves `failures` checks in a row unanswered for the timeout is hung, and is killed and started
    # again (0 failures turns the check off). /healthz is answered by the event loop alone, so a
    # process that is only busy answers it; benchmarks/liveness.py measures how slowly under a surge.
    liveness_period_seconds: float = 2.0
    liveness_timeout_seconds: float = 5.0
    liveness_failures: int = 3

    def __post_init__(self) -> None:
        if self.db_pool_size < 1:
            raise SettingsError("PEAKSHOP_DB_POOL_SIZE must be at least 1")
        if not 1_024 <= self.max_body_bytes <= 16 * 1024 * 1024:
            raise SettingsError("PEAKSHOP_MAX_BODY_BYTES must be between 1 KiB and 16 MiB")
        if not self.namespace.replace("-", "").replace("_", "").isalnum():
            raise SettingsError("PEAKSHOP_NAMESPACE may hold only letters, digits, '-' and '_'")
        if not 0 < self.redis_timeout_seconds <= 30:
            raise SettingsError("PEAKSHOP_REDIS_TIMEOUT_SECONDS must be above 0 and at most 30")
        if self.drain_seconds < 0:
            raise SettingsError("PEAKSHOP_DRAIN_SECONDS must not be negative")
        if self.inbox_retention_seconds < 3_600:
            raise SettingsError("PEAKSHOP_INBOX_RETENTION_SECONDS must be at least 3600 (an hour)")
        if not 0 <= self.http_connect_patience_seconds <= self.http_client_timeout:
            raise SettingsError(
                "PEAKSHOP_HTTP_CONNECT_PATIENCE_SECONDS must be between 0 and PEAKSHOP_HTTP_CLIENT_TIMEOUT"
            )
        if not 0 <= self.outbox_linger_seconds <= 1:
            raise SettingsError("PEAKSHOP_OUTBOX_LINGER_SECONDS must be between 0 and 1")
        if self.liveness_period_seconds <= 0 or self.liveness_timeout_seconds <= 0:
            raise SettingsError("PEAKSHOP_LIVENESS_PERIOD_SECONDS and _TIMEOUT_SECONDS must be above 0")
        if self.liveness_failures < 0:
            raise SettingsError("PEAKSHOP_LIVENESS_FAILURES must not be negative (0 turns the check off)")
        if self.topology != "local" and self.webhook_secret == "peakshop-dev-webhook-secret":
            raise SettingsError(
                "PEAKSHOP_WEBHOOK_SECRET still has its development default; set a secret outside `local`"
            )

    @property
    def embedded(self) -> bool:
        """True when the process runs on SQLite, the in-process bus and the memory cache."""
        return self.topology == "local"


def load_platform_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> PlatformSettings:
    return from_env(PlatformSettings, "PEAKSHOP_", environ, **overrides)
