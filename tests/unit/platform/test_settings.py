from __future__ import annotations

from pathlib import Path

import pytest

from peakshop.platform.settings import SettingsError, load_platform_settings
from peakshop.runtime.topology import load_topology


def test_defaults_run_the_embedded_topology() -> None:
    s = load_platform_settings({})
    assert s.topology == "local" and s.embedded and s.data_dir == Path(".peakshop")


def test_variables_are_typed_and_validated() -> None:
    s = load_platform_settings({"PEAKSHOP_DB_POOL_SIZE": "25", "PEAKSHOP_DRAIN_SECONDS": "2.5"})
    assert s.db_pool_size == 25 and s.drain_seconds == 2.5
    with pytest.raises(SettingsError, match="PEAKSHOP_DB_POOL_SIZE"):
        load_platform_settings({"PEAKSHOP_DB_POOL_SIZE": "many"})
    with pytest.raises(SettingsError, match="PEAKSHOP_DB_POOL_SIZE must be at least 1"):
        load_platform_settings({"PEAKSHOP_DB_POOL_SIZE": "0"})
    assert load_platform_settings({}).outbox_linger_seconds == 0.05
    assert load_platform_settings({"PEAKSHOP_OUTBOX_LINGER_SECONDS": "0"}).outbox_linger_seconds == 0
    with pytest.raises(SettingsError, match="PEAKSHOP_OUTBOX_LINGER_SECONDS must be between 0 and 1"):
        load_platform_settings({"PEAKSHOP_OUTBOX_LINGER_SECONDS": "5"})
    assert load_platform_settings({}).http_connect_patience_seconds == 3.0
    with pytest.raises(SettingsError, match="PEAKSHOP_HTTP_CONNECT_PATIENCE_SECONDS must be between 0 and"):
        load_platform_settings(
            {"PEAKSHOP_HTTP_CONNECT_PATIENCE_SECONDS": "12", "PEAKSHOP_HTTP_CLIENT_TIMEOUT": "10"}
        )


def test_liveness_limits_are_read_and_checked() -> None:
    liveness = load_platform_settings(
        {
            "PEAKSHOP_LIVENESS_PERIOD_SECONDS": "0.5",
            "PEAKSHOP_LIVENESS_TIMEOUT_SECONDS": "1",
            "PEAKSHOP_LIVENESS_FAILURES": "0",
        }
    )
    assert (
        liveness.liveness_period_seconds,
        liveness.liveness_timeout_seconds,
        liveness.liveness_failures,
    ) == (
        0.5,
        1.0,
        0,
    )
    with pytest.raises(
        SettingsError, match="PEAKSHOP_LIVENESS_PERIOD_SECONDS and _TIMEOUT_SECONDS must be above 0"
    ):
        load_platform_settings({"PEAKSHOP_LIVENESS_TIMEOUT_SECONDS": "0"})
    with pytest.raises(SettingsError, match="PEAKSHOP_LIVENESS_FAILURES must not be negative"):
        load_platform_settings({"PEAKSHOP_LIVENESS_FAILURES": "-1"})


def test_the_redis_timeout_is_read_and_bounded() -> None:
    assert load_platform_settings({}).redis_timeout_seconds == 1.0
    assert load_platform_settings({"PEAKSHOP_REDIS_TIMEOUT_SECONDS": "0.25"}).redis_timeout_seconds == 0.25
    for bad in ("0", "-1", "31"):
        with pytest.raises(SettingsError, match="PEAKSHOP_REDIS_TIMEOUT_SECONDS must be above 0"):
            load_platform_settings({"PEAKSHOP_REDIS_TIMEOUT_SECONDS": bad})


def test_unsafe_defaults_are_refused_outside_local() -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        load_platform_settings({"PEAKSHOP_TOPOLOGY": "split"})
    s = load_platform_settings({"PEAKSHOP_TOPOLOGY": "split", "PEAKSHOP_WEBHOOK_SECRET": "x" * 32})
    assert not s.embedded


def test_topologies_place_every_service_once() -> None:
    from peakshop.runtime.composition import BUILD_ORDER

    for name in ("local", "split", "grouped"):
        topology = load_topology(name)
        placed = [s for p in topology.processes.values() for s in p.services]
        assert sorted(placed) == sorted(set(placed)) == sorted(BUILD_ORDER)


def test_a_service_url_comes_from_its_process_or_the_environment() -> None:
    split = load_topology("split")
    assert split.url_of("catalog", {}) == "http://127.0.0.1:8101"
    assert split.url_of("catalog", {"PEAKSHOP_CATALOG_URL": "http://catalog:80/"}) == "http://catalog:80"


def test_a_bad_topology_file_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "t.toml"
    bad.write_text('name = "x"\nembedded = true\n[processes.a]\nservices = ["catalog"]\nport = "eighty"\n')
    with pytest.raises(SettingsError, match=str(bad)):
        load_topology(str(bad))
    with pytest.raises(SettingsError, match="no topology"):
        load_topology("nowhere")
