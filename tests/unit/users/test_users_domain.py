from __future__ import annotations

import hashlib

import pytest

from peakshop.platform.settings import SettingsError
from peakshop.users.domain import (
    MAX_TOKEN_LENGTH,
    FixedWindow,
    LoginPolicy,
    bearer_token,
    client_key,
    hash_token,
    new_session_token,
    normalise_email,
    plausible_token,
)
from peakshop.users.settings import UsersSettings, load_users_settings


def test_an_email_is_stored_in_one_spelling() -> None:
    assert normalise_email("  Ann.Lee@Shop.Example ") == "ann.lee@shop.example"


def test_session_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_session_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) == 43
        assert plausible_token(token)
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_only_the_sha256_of_a_token_is_kept() -> None:
    token = new_session_token()
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert token not in hash_token(token)


def test_empty_or_oversized_tokens_are_not_worth_a_lookup() -> None:
    assert not plausible_token("")
    assert not plausible_token("x" * (MAX_TOKEN_LENGTH + 1))


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_a_bearer_token_is_read_from_the_authorization_header(header: str | None, token: str | None) -> None:
    assert bearer_token(header) == token


def test_clients_are_counted_per_ipv4_address_and_per_ipv6_64() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("testclient") == "testclient"
    assert client_key("") == "unknown"


def test_a_fixed_window_says_how_long_until_it_closes() -> None:
    window = FixedWindow(limit=30, seconds=60)
    assert window.index(120.0) == window.index(179.9) == 2
    assert window.retry_after(120.0) == 60
    assert window.retry_after(179.5) == 1


def test_limit_keys_carry_no_email_address() -> None:
    policy = LoginPolicy(FixedWindow(30, 60), failures_per_account=5, failure_window=300, lockout=300)
    assert "ann" not in policy.failure_counter("ann@shop.example")
    assert policy.lock("Ann@Shop.Example") == policy.lock("ann@shop.example")
    assert policy.client_counter("203.0.113.7", 61.0) != policy.client_counter("203.0.113.7", 121.0)


def test_settings_default_to_a_week_long_session_and_owasp_grade_argon2() -> None:
    settings = load_users_settings({})
    assert settings.session_ttl_seconds == 7 * 24 * 3600
    assert settings.argon2_memory_kib >= 19_456
    assert settings.argon2_time_cost >= 2
    assert settings.max_addresses == 20


def test_settings_are_read_from_the_environment() -> None:
    settings = load_users_settings({"PEAKSHOP_USERS_SESSION_TTL_SECONDS": "60"})
    assert settings.session_ttl_seconds == 60


def test_settings_refuse_nonsense_at_start() -> None:
    with pytest.raises(SettingsError, match="PEAKSHOP_USERS_LOGIN_FAILURES_PER_ACCOUNT"):
        UsersSettings(login_failures_per_account=0)
    with pytest.raises(SettingsError, match="ARGON2_MEMORY_KIB"):
        UsersSettings(argon2_memory_kib=4)
    with pytest.raises(SettingsError, match="PEAKSHOP_USERS_SESSION_TTL_SECONDS"):
        load_users_settings({"PEAKSHOP_USERS_SESSION_TTL_SECONDS": "soon"})
