"""Configuration, read once from the environment into a frozen object.

Every variable has a default that needs no setup (SQLite + local disk under ./data).
The README documents each one; keep the two in step.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from pixelwand.plans import Plan, PlanLimits

KIB = 1024
MIB = 1024**2
GIB = 1024**3

_DEFAULT_RPS = {Plan.FREE: 0.0, Plan.TEAM: 3.0, Plan.BUSINESS: 10.0, Plan.ENTERPRISE: 100.0}
_DEFAULT_QUOTA = {
    Plan.FREE: 1 * GIB,
    Plan.TEAM: 100 * GIB,
    Plan.BUSINESS: 1024 * GIB,
    Plan.ENTERPRISE: 10 * 1024 * GIB,
}


class ConfigError(ValueError):
    """A configuration variable has a value that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    storage_url: str
    secret_key: bytes
    public_url: str | None
    host: str
    port: int
    rate_limit_url: str | None
    plans: Mapping[Plan, PlanLimits]
    max_upload_bytes: int
    max_multipart_bytes: int
    max_image_pixels: int
    image_workers: int
    render_memory_bytes: int
    render_memory_total_bytes: int
    render_queue_length: int
    render_queue_seconds: float
    graphql_max_cost: int
    cors_origins: tuple[str, ...]
    sweep_interval_seconds: float
    upload_retention_seconds: float
    storage_timeout_seconds: float
    storage_copy_timeout_seconds: float
    auth_cache_seconds: float
    log_level: str
    log_format: str = "text"
    access_log: bool = False
    metrics_token: str | None = None
    webhook_allow_private: bool = False
    webhook_worker: bool = True
    webhook_poll_seconds: float = 1.0
    webhook_retry_base_seconds: float = 30.0
    webhook_timeout_seconds: float = 10.0
    # Client input limits (docs/hardening.md, "Client input and request limits").
    max_json_body_bytes: int = MIB
    max_graphql_document_bytes: int = 256 * KIB
    graphql_cache_bytes: int = 32 * MIB
    header_timeout_seconds: float = 10.0
    max_header_bytes: int = 64 * KIB
    body_timeout_seconds: float = 30.0
    keep_alive_timeout_seconds: float = 5.0
    # How far past its burst one heavy GraphQL request may put its key (pixelwand/ratelimit/
    # allowance.py): the longest its next requests are refused for.
    rate_limit_max_debt_seconds: float = 60.0
    # Facts after finalize (services/facts.py); defaults so that Settings(...) built by hand
    # elsewhere keeps working.
    facts_worker: bool = True
    facts_lease_seconds: float = 60.0
    facts_poll_seconds: float = 5.0
    video_decode_timeout_seconds: float = 20.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        data_dir = Path(env.get("PIXELWAND_DATA_DIR", "./data"))
        plans = {
            plan: PlanLimits(
                rps=_float(env, f"PIXELWAND_PLAN_{plan.value}_RPS", _DEFAULT_RPS[plan]),
                storage_quota_bytes=_int(
                    env, f"PIXELWAND_PLAN_{plan.value}_QUOTA_BYTES", _DEFAULT_QUOTA[plan]
                ),
            )
            for plan in Plan
        }
        secret = env.get("PIXELWAND_SECRET_KEY")
        render_memory = _int(env, "PIXELWAND_RENDER_MEMORY_BYTES", 512 * MIB)
        return cls(
            data_dir=data_dir,
            database_url=env.get("PIXELWAND_DATABASE_URL", f"sqlite://{data_dir}/pixelwand.db"),
            storage_url=env.get("PIXELWAND_STORAGE_URL", f"local:{data_dir}/storage"),
            secret_key=secret.encode() if secret else _stored_secret(data_dir),
            public_url=(env.get("PIXELWAND_PUBLIC_URL") or "").rstrip("/") or None,
            host=env.get("PIXELWAND_HOST", "127.0.0.1"),
            port=_int(env, "PIXELWAND_PORT", 8000),
            rate_limit_url=env.get("PIXELWAND_RATE_LIMIT_URL") or None,
            rate_limit_max_debt_seconds=max(
                0.0, _float(env, "PIXELWAND_RATE_LIMIT_MAX_DEBT_SECONDS", 60.0)
            ),
            plans=plans,
            max_upload_bytes=_int(env, "PIXELWAND_MAX_UPLOAD_BYTES", 5 * GIB),
            # S3's largest object (docs/multipart.md).
            max_multipart_bytes=_int(env, "PIXELWAND_MAX_MULTIPART_BYTES", 5 * 1024 * GIB),
            max_image_pixels=_int(env, "PIXELWAND_MAX_IMAGE_PIXELS", 100_000_000),
            image_workers=_int(env, "PIXELWAND_IMAGE_WORKERS", _usable_cores()),
            render_memory_bytes=render_memory,
            render_memory_total_bytes=max(
                render_memory,
                _int(env, "PIXELWAND_RENDER_MEMORY_TOTAL_BYTES", 2 * render_memory),
            ),
            render_queue_length=_int(env, "PIXELWAND_RENDER_QUEUE_LENGTH", 64),
            render_queue_seconds=_float(env, "PIXELWAND_RENDER_QUEUE_SECONDS", 30.0),
            graphql_max_cost=_int(env, "PIXELWAND_GRAPHQL_MAX_COST", 50_000),
            cors_origins=tuple(
                o.strip() for o in env.get("PIXELWAND_CORS_ORIGINS", "*").split(",") if o.strip()
            ),
            sweep_interval_seconds=_float(env, "PIXELWAND_SWEEP_INTERVAL_SECONDS", 60.0),
            upload_retention_seconds=_float(env, "PIXELWAND_UPLOAD_RETENTION_SECONDS", 86400.0),
            storage_timeout_seconds=_float(env, "PIXELWAND_STORAGE_TIMEOUT_SECONDS", 10.0),
            storage_copy_timeout_seconds=_float(
                env, "PIXELWAND_STORAGE_COPY_TIMEOUT_SECONDS", 900.0
            ),
            auth_cache_seconds=min(_float(env, "PIXELWAND_AUTH_CACHE_SECONDS", 1.0), 1.0),
            log_level=env.get("PIXELWAND_LOG_LEVEL", "INFO").upper(),
            log_format=_choice(env, "PIXELWAND_LOG_FORMAT", ("text", "json"), "text"),
            access_log=_bool(env, "PIXELWAND_ACCESS_LOG", False),
            metrics_token=env.get("PIXELWAND_METRICS_TOKEN") or None,
            webhook_allow_private=_bool(env, "PIXELWAND_WEBHOOK_ALLOW_PRIVATE", False),
            webhook_worker=_bool(env, "PIXELWAND_WEBHOOK_WORKER", True),
            webhook_poll_seconds=_float(env, "PIXELWAND_WEBHOOK_POLL_SECONDS", 1.0),
            webhook_retry_base_seconds=_float(env, "PIXELWAND_WEBHOOK_RETRY_BASE_SECONDS", 30.0),
            webhook_timeout_seconds=_float(env, "PIXELWAND_WEBHOOK_TIMEOUT_SECONDS", 10.0),
            max_json_body_bytes=_positive(env, "PIXELWAND_MAX_JSON_BODY_BYTES", MIB),
            max_graphql_document_bytes=_positive(
                env, "PIXELWAND_MAX_GRAPHQL_DOCUMENT_BYTES", 256 * KIB
            ),
            graphql_cache_bytes=_positive(env, "PIXELWAND_GRAPHQL_CACHE_BYTES", 32 * MIB),
            header_timeout_seconds=_float(env, "PIXELWAND_HEADER_TIMEOUT_SECONDS", 10.0),
            max_header_bytes=_positive(env, "PIXELWAND_MAX_HEADER_BYTES", 64 * KIB),
            body_timeout_seconds=_float(env, "PIXELWAND_BODY_TIMEOUT_SECONDS", 30.0),
            keep_alive_timeout_seconds=_float(env, "PIXELWAND_KEEP_ALIVE_TIMEOUT_SECONDS", 5.0),
            facts_worker=env.get("PIXELWAND_FACTS_WORKER", "1").strip().lower()
            not in ("0", "false", "no", "off"),
            facts_lease_seconds=max(1.0, _float(env, "PIXELWAND_FACTS_LEASE_SECONDS", 60.0)),
            facts_poll_seconds=max(0.1, _float(env, "PIXELWAND_FACTS_POLL_SECONDS", 5.0)),
            video_decode_timeout_seconds=_float(
                env, "PIXELWAND_VIDEO_DECODE_TIMEOUT_SECONDS", 20.0
            ),
        )

    def base_url(self) -> str:
        """The base of every URL the API hands out."""
        return self.public_url or f"http://{self.host}:{self.port}"


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity: taskset, cpusets), not the machine's."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (env.get(name) or "").strip().lower() or default
    if raw not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _stored_secret(data_dir: Path) -> bytes:
    """A secret generated on first use and kept in DATA_DIR/secret.key (mode 0600)."""
    path = data_dir / "secret.key"
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its secret
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(value)
    return value
