from __future__ import annotations

from collections.abc import Callable

import pytest

from peakshop.contracts.payments import Authorize
from peakshop.payments.sandbox import SandboxGateway
from peakshop.payments.settings import PaymentsSettings, load_payments_settings
from peakshop.platform.db import SqliteDatabase
from peakshop.platform.problems import Problem
from peakshop.platform.settings import SettingsError

from .conftest import Payments


async def outcomes(payments: Payments, count: int) -> list[str]:
    seen = []
    for i in range(count):
        try:
            payment = await payments.handlers.authorize(
                Authorize(order_id=f"order-{i}", amount=100, currency="EUR", payment_token="tok_visa")
            )
            seen.append(payment.status)
        except Problem as problem:
            seen.append(problem.slug)
    return seen


async def test_a_decline_rate_of_one_declines_every_visa(make_payments: Callable[..., Payments]) -> None:
    payments = make_payments(sandbox_decline_rate=1.0, sandbox_seed=7)
    assert await outcomes(payments, 20) == ["payment-declined"] * 20


async def test_a_timeout_rate_of_one_leaves_every_visa_pending_with_a_charge(
    make_payments: Callable[..., Payments],
) -> None:
    payments = make_payments(sandbox_timeout_rate=1.0)
    assert await outcomes(payments, 5) == ["payment-pending"] * 5
    assert await payments.scalar("SELECT count(*) FROM payments.sandbox_charges") == 5


async def test_an_error_rate_of_one_fails_every_visa_and_charges_nothing(
    make_payments: Callable[..., Payments],
) -> None:
    payments = make_payments(sandbox_error_rate=1.0)
    assert await outcomes(payments, 5) == ["payment-provider-error"] * 5
    assert await payments.scalar("SELECT count(*) FROM payments.sandbox_charges") == 0


async def test_the_same_seed_gives_the_same_outcomes(payments_db: SqliteDatabase) -> None:
    settings = PaymentsSettings(sandbox_decline_rate=0.3, sandbox_timeout_rate=0.2, sandbox_seed=11)
    first, second = SandboxGateway(payments_db, settings), SandboxGateway(payments_db, settings)
    draws = [first._outcome("tok_visa")[0] for _ in range(50)]
    assert draws == [second._outcome("tok_visa")[0] for _ in range(50)]
    assert {"authorized", "declined", "timeout"} <= set(draws)
    assert first._outcome("tok_decline") == ("declined", "card_declined")


async def test_latency_is_the_mean_give_or_take_the_jitter(payments_db: SqliteDatabase) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    settings = PaymentsSettings(sandbox_latency_ms=100, sandbox_latency_jitter_ms=20)
    sandbox = SandboxGateway(payments_db, settings, sleep=sleep)
    for i in range(30):
        await sandbox.authorize(f"k{i}", 100, "EUR", "tok_visa")
    assert len(slept) == 30
    assert all(0.08 <= s <= 0.12 for s in slept)
    assert len(set(slept)) > 1


def test_settings_come_from_the_environment_and_are_checked() -> None:
    settings = load_payments_settings(
        {"PEAKSHOP_PAYMENTS_SANDBOX_LATENCY_MS": "250", "PEAKSHOP_PAYMENTS_SANDBOX_DECLINE_RATE": "0.1"}
    )
    assert (settings.sandbox_latency_ms, settings.sandbox_decline_rate) == (250, 0.1)
    with pytest.raises(SettingsError, match="DECLINE_RATE"):
        load_payments_settings({"PEAKSHOP_PAYMENTS_SANDBOX_DECLINE_RATE": "1.5"})
    with pytest.raises(SettingsError, match="add up"):
        load_payments_settings(
            {"PEAKSHOP_PAYMENTS_SANDBOX_DECLINE_RATE": "0.6", "PEAKSHOP_PAYMENTS_SANDBOX_TIMEOUT_RATE": "0.6"}
        )
