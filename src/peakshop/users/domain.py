"""The rules of accounts and sessions, as plain Python: no framework, driver or I/O."""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
from dataclasses import dataclass

SCHEMA = "users"

# 32 random bytes: 256 bits of entropy, 43 characters once base64url-encoded.
TOKEN_BYTES = 32
# Anything longer than a token we could have issued is rejected before it reaches the database.
MAX_TOKEN_LENGTH = 128


def normalise_email(email: str) -> str:
    """One spelling per mailbox: surrounding space dropped and the whole address lower-cased.

    Lower-casing the local part is stricter than RFC 5321 allows, but no real provider tells
    `Ann@shop.example` from `ann@shop.example`, and two accounts for one inbox are worse.
    """
    return email.strip().lower()


def new_session_token() -> str:
    """An opaque bearer token; only its hash is ever stored."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256 of the token, hex: a leaked sessions table gives no usable tokens.

    A fast hash is enough here (unlike passwords): the token carries 256 random bits, so there is
    nothing to guess by brute force.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def plausible_token(token: str) -> bool:
    """Worth looking up: not empty, and no longer than a token this service issues."""
    return 0 < len(token) <= MAX_TOKEN_LENGTH


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is none."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None


def client_key(client_ip: str) -> str:
    """The unit a per-client limit counts: one IPv4 address, or one IPv6 /64 (what one host gets)."""
    raw = client_ip.strip()
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        # Not an address (a test client, a proxy's placeholder): count it as given, bounded in size.
        return raw[:64] or "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False).network_address) + "/64"
    return str(address)


@dataclass(frozen=True)
class FixedWindow:
    """A counting window that starts on multiples of `seconds`: keys and Retry-After follow from now."""

    limit: int
    seconds: int

    def index(self, now: float) -> int:
        return int(now // self.seconds)

    def retry_after(self, now: float) -> int:
        """Whole seconds until the current window closes (at least one)."""
        ends = (self.index(now) + 1) * self.seconds
        return max(1, math.ceil(ends - now))


@dataclass(frozen=True)
class LoginPolicy:
    """How many log-in attempts are allowed before the answer is 429.

    `per_client` counts every attempt from one client address in a fixed window. `failures_per_account`
    counts wrong passwords for one email (known or not, so the limit reveals nothing) within
    `failure_window` seconds of the first; reaching it locks that email for `lockout` seconds. Correct
    passwords never count against the account.
    """

    per_client: FixedWindow
    failures_per_account: int
    failure_window: int
    lockout: int

    def client_counter(self, client_ip: str, now: float) -> str:
        return f"users:login:client:{client_key(client_ip)}:{self.per_client.index(now)}"

    @staticmethod
    def failure_counter(email: str) -> str:
        return f"users:login:failures:{_email_key(email)}"

    @staticmethod
    def lock(email: str) -> str:
        return f"users:login:locked:{_email_key(email)}"


def _email_key(email: str) -> str:
    # Hashed so that cache keys (and whoever reads the cache) carry no email addresses.
    return hashlib.sha256(normalise_email(email).encode("utf-8")).hexdigest()[:32]


def remaining_seconds(until: float, now: float) -> int:
    return max(1, math.ceil(until - now))
