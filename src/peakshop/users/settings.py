"""The users service's settings (`PEAKSHOP_USERS_*`), validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from peakshop.platform.settings import SettingsError, from_env

DAY = 24 * 60 * 60


class UsersSettings(msgspec.Struct, kw_only=True, frozen=True):
    """Session lifetime, log-in limits and the argon2id cost of a password hash.

    The argon2id defaults (t=3, m=19 MiB, p=1) take about 30 ms per hash on one core of the 2-core CI
    machine; they are above OWASP's minimum of t=2 at 19 MiB. Raising them slows every registration
    and log-in, and `hash_concurrency` hashes at once bound the CPU and memory (m each) spent on them.
    """

    session_ttl_seconds: int = 7 * DAY
    login_attempts_per_client: int = 30
    login_client_window_seconds: int = 60
    login_failures_per_account: int = 5
    login_failure_window_seconds: int = 300
    login_lockout_seconds: int = 300
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 19_456
    argon2_parallelism: int = 1
    hash_concurrency: int = 2
    max_addresses: int = 20

    def __post_init__(self) -> None:
        positive = {
            "SESSION_TTL_SECONDS": self.session_ttl_seconds,
            "LOGIN_ATTEMPTS_PER_CLIENT": self.login_attempts_per_client,
            "LOGIN_CLIENT_WINDOW_SECONDS": self.login_client_window_seconds,
            "LOGIN_FAILURES_PER_ACCOUNT": self.login_failures_per_account,
            "LOGIN_FAILURE_WINDOW_SECONDS": self.login_failure_window_seconds,
            "LOGIN_LOCKOUT_SECONDS": self.login_lockout_seconds,
            "ARGON2_TIME_COST": self.argon2_time_cost,
            "ARGON2_PARALLELISM": self.argon2_parallelism,
            "HASH_CONCURRENCY": self.hash_concurrency,
            "MAX_ADDRESSES": self.max_addresses,
        }
        for name, value in positive.items():
            if value < 1:
                raise SettingsError(f"PEAKSHOP_USERS_{name} must be at least 1")
        # argon2 itself refuses less than 8 KiB per lane.
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise SettingsError("PEAKSHOP_USERS_ARGON2_MEMORY_KIB must be at least 8 x ARGON2_PARALLELISM")


def load_users_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> UsersSettings:
    return from_env(UsersSettings, "PEAKSHOP_USERS_", environ, **overrides)
