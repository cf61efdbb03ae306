"""The model-based state machine once more, on PostgreSQL, with small settings."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from peakshop.platform.db import Database, PostgresDatabase
from tests.unit.inventory.inventory_scenarios import InventoryMachine

pytestmark = pytest.mark.services


def test_any_interleaving_keeps_every_invariant_on_postgres(inventory_url: str) -> None:
    async def open_database() -> Database:
        return await PostgresDatabase.connect(inventory_url, "inventory", pool_size=2)

    class OnPostgres(InventoryMachine):
        def __init__(self) -> None:
            super().__init__(open_database)

    run_state_machine_as_test(
        OnPostgres,
        settings=settings(
            max_examples=10,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
