"""Fixtures shared by every tier: real services when the machine has them, scratch databases per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import AMQP_URL, REDIS_URL, need_service, scratch_database


@pytest.fixture
def postgres() -> None:
    need_service("PostgreSQL", "127.0.0.1", 5432)


@pytest.fixture
def redis_url() -> str:
    need_service("Redis", "127.0.0.1", 6379)
    return REDIS_URL


@pytest.fixture
def amqp_url() -> str:
    need_service("RabbitMQ", "127.0.0.1", 5672)
    return AMQP_URL


@pytest.fixture
def scratch_postgres_url(postgres: None) -> Iterator[str]:
    """A PostgreSQL database of its own for one test, dropped afterwards."""
    with scratch_database() as url:
        yield url
