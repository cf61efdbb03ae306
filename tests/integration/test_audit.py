"""`peakshop audit` finds each broken invariant, on SQLite and on PostgreSQL.

The books are written straight into the services' tables: first a shop whose books balance (one order
confirmed and paid, one declined, one whose sale was returned), then one fault at a time, the kind a
bug in the saga would leave. Each fault must fail its own check, and only that one, with a sentence
that names what is wrong.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from peakshop.platform import db as database
from peakshop.platform.settings import PlatformSettings, load_platform_settings
from peakshop.runtime.audit import STUCK_GRACE_SECONDS, AuditReport, run_audit
from tests.unit.orders.orders_shop import migrate_all

NOW = time.time()
LONG_AGO = NOW - STUCK_GRACE_SECONDS - 60

# ord_paid bought 2 x sku-a for 2,000 and paid; ord_declined wanted 1 x sku-b and was declined;
# ord_cancelled bought 1 x sku-c, whose authorisation the provider cancelled after the sale, so the
# unit went back on sale (a returned reservation) and the order failed. sku-a was sold at most 5 per
# customer; the admin has lowered that to 1 since, which does not make the earlier sale a breach.
BALANCED_BOOKS = {
    "inventory": [
        "INSERT INTO inventory.stock (sku_id, initial, available, reserved, sold, per_customer_limit) "
        "VALUES ('sku-a', 10, 8, 0, 2, 1), ('sku-b', 5, 5, 0, 0, NULL), ('sku-c', 3, 3, 0, 0, NULL)",
        "INSERT INTO inventory.reservations (id, customer_id, status, expires_at, created_at, updated_at) "
        f"VALUES ('ord_paid', 'acct', 'committed', {NOW + 600}, {NOW}, {NOW}), "
        f"('ord_declined', 'acct', 'released', {NOW + 600}, {NOW}, {NOW}), "
        f"('ord_cancelled', 'acct', 'returned', {NOW + 600}, {NOW}, {NOW})",
        "INSERT INTO inventory.reservation_lines (reservation_id, sku_id, quantity, per_customer_limit) "
        "VALUES ('ord_paid', 'sku-a', 2, 5), ('ord_declined', 'sku-b', 1, NULL), "
        "('ord_cancelled', 'sku-c', 1, NULL)",
    ],
    "payments": [
        "INSERT INTO payments.payments (id, order_id, amount, currency, status, created_at, updated_at) "
        f"VALUES ('pay_1', 'ord_paid', 2000, 'EUR', 'captured', {NOW}, {NOW}), "
        f"('pay_2', 'ord_declined', 1000, 'EUR', 'declined', {NOW}, {NOW}), "
        f"('pay_3', 'ord_cancelled', 500, 'EUR', 'voided', {NOW}, {NOW})",
        "INSERT INTO payments.sandbox_charges (id, idempotency_key, amount, currency, status, created_at, "
        f"updated_at) VALUES ('ch_1', 'ord_paid', 2000, 'EUR', 'captured', {NOW}, {NOW}), "
        f"('ch_3', 'ord_cancelled', 500, 'EUR', 'voided', {NOW}, {NOW})",
    ],
    "orders": [
        "INSERT INTO orders.orders (id, account_id, idempotency_key, request_fingerprint, cart_id, step, "
        "status, subtotal, total, currency, item_count, shipping_address, created_at, updated_at) VALUES "
        f"('ord_paid', 'acct', 'key-1', 'f', 'cart-1', 'confirmed', 'confirmed', 2000, 2000, 'EUR', 2, "
        f"'{{}}', {NOW}, {NOW}), "
        f"('ord_declined', 'acct', 'key-2', 'f', 'cart-2', 'failed', 'failed', 1000, 1000, 'EUR', 1, "
        f"'{{}}', {NOW}, {NOW}), "
        f"('ord_cancelled', 'acct', 'key-3', 'f', 'cart-3', 'failed', 'failed', 500, 500, 'EUR', 1, "
        f"'{{}}', {NOW}, {NOW})",
        "INSERT INTO orders.order_lines (order_id, position, sku_id, product_id, name, quantity, "
        "unit_price, line_total) VALUES ('ord_paid', 0, 'sku-a', 'prod-a', 'A', 2, 1000, 2000), "
        "('ord_declined', 0, 'sku-b', 'prod-b', 'B', 1, 1000, 1000), "
        "('ord_cancelled', 0, 'sku-c', 'prod-c', 'C', 1, 500, 500)",
    ],
}

SOLD = "every confirmed order's units are sold, and no other order's"
PAID = "every confirmed order has one captured payment of its total"
STOCK = "stock balances: initial = available + reserved + sold, none negative"
STUCK = "no reservation outlives its expiry or its failed order"
PROVIDER = "no charge held at the provider lacks a confirmed order"
CAPTURED = "no captured payment lacks a confirmed order"
LIMITS = "no customer holds more of a SKU than its per-customer limit allowed"

# name: (statements by service, the check that must fail, words its violation must say)
FAULTS: dict[str, tuple[dict[str, list[str]], str, str]] = {
    "a confirmed order's units went back on the shelf (sold twice)": (
        {
            "inventory": [
                "UPDATE inventory.reservations SET status = 'released' WHERE id = 'ord_paid'",
                "UPDATE inventory.stock SET available = 10, sold = 0 WHERE sku_id = 'sku-a'",
            ]
        },
        SOLD,
        "order ord_paid is confirmed but has a reservation that is released",
    ),
    "a confirmed order's sale was returned (its units on sale again)": (
        {
            "inventory": [
                "UPDATE inventory.reservations SET status = 'returned' WHERE id = 'ord_paid'",
                "UPDATE inventory.stock SET available = 10, sold = 0 WHERE sku_id = 'sku-a'",
            ]
        },
        SOLD,
        "order ord_paid is confirmed but has a reservation that is returned",
    ),
    "a reservation sold more than its order bought": (
        {
            "inventory": [
                "UPDATE inventory.reservation_lines SET quantity = 3 WHERE reservation_id = 'ord_paid'",
                "UPDATE inventory.stock SET available = 7, sold = 3 WHERE sku_id = 'sku-a'",
            ]
        },
        SOLD,
        "order ord_paid bought 2 x sku-a but its reservation sold 3 x sku-a",
    ),
    "units sold for an order that failed": (
        {
            "inventory": [
                "UPDATE inventory.reservations SET status = 'committed' WHERE id = 'ord_declined'",
                "UPDATE inventory.stock SET available = 4, sold = 1 WHERE sku_id = 'sku-b'",
            ]
        },
        SOLD,
        "reservation ord_declined sold 1 x sku-b for an order that failed",
    ),
    "units sold long ago for an order that never finished": (
        {
            "inventory": [
                f"UPDATE inventory.reservations SET status = 'committed', updated_at = {LONG_AGO} "
                "WHERE id = 'ord_declined'",
                "UPDATE inventory.stock SET available = 4, sold = 1 WHERE sku_id = 'sku-b'",
            ],
            "orders": [
                "UPDATE orders.orders SET step = 'authorized', status = 'pending' WHERE id = 'ord_declined'",
            ],
            "payments": [
                "UPDATE payments.payments SET status = 'authorized' WHERE id = 'pay_2'",
            ],
        },
        SOLD,
        "for an order that is still authorized",
    ),
    "a confirmed order's payment was voided": (
        {"payments": ["UPDATE payments.payments SET status = 'voided' WHERE id = 'pay_1'"]},
        PAID,
        "order ord_paid is confirmed but its payment is voided",
    ),
    "less was captured than the order's total": (
        {"payments": ["UPDATE payments.payments SET amount = 1500 WHERE id = 'pay_1'"]},
        PAID,
        "order ord_paid totals 2000 but 1500 was captured",
    ),
    "a declined order's payment was captured after all": (
        {"payments": ["UPDATE payments.payments SET status = 'captured' WHERE id = 'pay_2'"]},
        CAPTURED,
        "payment of order ord_declined is captured but the order is not confirmed",
    ),
    "the provider holds a charge no order accounts for": (
        {
            "payments": [
                "INSERT INTO payments.sandbox_charges (id, idempotency_key, amount, currency, status, "
                f"created_at, updated_at) VALUES ('ch_2', 'ord_declined', 1000, 'EUR', 'authorized', {NOW}, {NOW})",
            ]
        },
        PROVIDER,
        "the provider holds a authorized charge for ord_declined",
    ),
    "a unit counted as sold that no reservation sold": (
        {"inventory": ["UPDATE inventory.stock SET available = 7, sold = 3 WHERE sku_id = 'sku-a'"]},
        STOCK,
        "sku-a: sold 3 != committed reservation lines 2",
    ),
    "a customer holds more than the limit their reservation was checked against": (
        {
            "inventory": [
                "UPDATE inventory.reservation_lines SET per_customer_limit = 1 WHERE reservation_id = 'ord_paid'"
            ]
        },
        LIMITS,
        "customer acct holds 2 x sku-a, above the per-customer limit of 1",
    ),
    "a failed order still holds its stock": (
        {
            "inventory": [
                "UPDATE inventory.reservations SET status = 'active' WHERE id = 'ord_declined'",
                "UPDATE inventory.stock SET available = 4, reserved = 1 WHERE sku_id = 'sku-b'",
            ]
        },
        STUCK,
        "reservation ord_declined still holds stock for a failed order",
    ),
}


async def _books(settings: PlatformSettings, statements: dict[str, list[str]]) -> None:
    for service, sqls in statements.items():
        db = await database.connect_as_configured(settings, service, pool_size=1)
        try:
            async with db.transaction() as tx:
                for sql in sqls:
                    await tx.execute(sql)
        finally:
            await db.close()


async def _audit_of(settings: PlatformSettings, fault: dict[str, list[str]] | None = None) -> AuditReport:
    await migrate_all(settings)
    await _books(settings, BALANCED_BOOKS)
    if fault is not None:
        await _books(settings, fault)
    return await run_audit(settings, now=NOW)


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> PlatformSettings:
    if request.param == "sqlite":
        return load_platform_settings({}, embedded=True, data_dir=tmp_path)
    url = request.getfixturevalue("scratch_postgres_url")
    return load_platform_settings({}, embedded=False, data_dir=tmp_path, postgres_url=url)


async def test_balanced_books_pass_every_check(settings: PlatformSettings) -> None:
    report = await _audit_of(settings)
    assert report.violations == []
    assert report.ok
    assert {check.name for check in report.checks} >= {SOLD, PAID, STOCK, STUCK, PROVIDER, CAPTURED}


@pytest.mark.parametrize("fault", FAULTS, ids=list(FAULTS))
async def test_each_broken_invariant_fails_its_own_check(fault: str, settings: PlatformSettings) -> None:
    statements, check_name, words = FAULTS[fault]
    report = await _audit_of(settings, statements)
    assert not report.ok
    failed = {check.name: check.violations for check in report.checks if not check.ok}
    assert list(failed) == [check_name], failed
    assert any(words in violation for violation in failed[check_name]), failed[check_name]


def _caught_between_capture_and_confirmation(at: float) -> dict[str, list[str]]:
    """ord_declined as a checkout that took the money and sold the units at `at`, not yet confirmed."""
    return {
        "orders": [f"UPDATE orders.orders SET step = 'authorized', status = 'pending', updated_at = {at}"
                   " WHERE id = 'ord_declined'"],
        "payments": [
            "UPDATE payments.payments SET status = 'captured' WHERE id = 'pay_2'",
            "INSERT INTO payments.sandbox_charges (id, idempotency_key, amount, currency, status, created_at, "
            f"updated_at) VALUES ('ch_2', 'ord_declined', 1000, 'EUR', 'captured', {at}, {at})",
        ],
        "inventory": [
            f"UPDATE inventory.reservations SET status = 'committed', updated_at = {at} WHERE id = 'ord_declined'",
            "UPDATE inventory.stock SET available = 4, sold = 1 WHERE sku_id = 'sku-b'",
        ],
    }  # fmt: skip


async def test_a_checkout_in_flight_is_no_violation_but_one_stuck_past_the_grace_is(
    settings: PlatformSettings,
) -> None:
    """The audit may run while buyers check out: money taken and units sold a moment before the order
    confirms are what a running checkout looks like; the same state two minutes on is a stuck one."""
    assert (await _audit_of(settings, _caught_between_capture_and_confirmation(NOW))).ok


async def test_a_checkout_stuck_between_capture_and_confirmation_fails_three_checks(
    settings: PlatformSettings,
) -> None:
    report = await _audit_of(settings, _caught_between_capture_and_confirmation(LONG_AGO))
    assert {check.name for check in report.checks if not check.ok} == {CAPTURED, PROVIDER, SOLD}
