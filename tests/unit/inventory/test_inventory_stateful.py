"""Reserve, commit, release, expire, restock and restart in any order keep the books balanced (SQLite)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from peakshop.inventory.service import MIGRATIONS
from peakshop.platform.db import Database, SqliteDatabase, sqlite_path
from peakshop.platform.migrations import upgrade
from tests.unit.inventory.inventory_scenarios import InventoryMachine


def test_any_interleaving_keeps_every_invariant_on_sqlite(tmp_path: Path) -> None:
    upgrade(MIGRATIONS, "inventory", embedded=True, data_dir=tmp_path, postgres_url="")
    path = sqlite_path(tmp_path, "inventory")

    async def open_database() -> Database:
        return await SqliteDatabase.connect(path, "inventory")

    class OnSqlite(InventoryMachine):
        def __init__(self) -> None:
            super().__init__(open_database)

    run_state_machine_as_test(
        OnSqlite,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
