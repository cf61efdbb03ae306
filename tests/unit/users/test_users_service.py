from __future__ import annotations

import asyncio
import time
from pathlib import Path

from peakshop.contracts.users import TOPIC_ACCOUNT_REGISTERED, AccountRegistered, Credentials, NewAccount
from peakshop.platform.bus import InProcessBus
from peakshop.platform.cache import MemoryCache
from peakshop.platform.messages import Envelope
from peakshop.platform.metrics import Metrics
from peakshop.platform.migrations import upgrade
from peakshop.platform.service import HostedService, Infrastructure
from peakshop.platform.settings import PlatformSettings
from peakshop.users.handlers import Passwords
from peakshop.users.service import UsersService
from peakshop.users.settings import UsersSettings

FAST = UsersSettings(argon2_time_cost=1, argon2_memory_kib=8)


async def test_the_service_runs_embedded_and_relays_its_events(tmp_path: Path) -> None:
    published: list[Envelope] = []

    async def record(envelope: Envelope) -> None:
        published.append(envelope)

    bus = InProcessBus()
    bus.subscribe("users-test", [TOPIC_ACCOUNT_REGISTERED], record)
    await bus.start()
    infra = Infrastructure(
        settings=PlatformSettings(data_dir=tmp_path), metrics=Metrics(), bus=bus, cache=MemoryCache()
    )
    service = UsersService(infra, FAST)
    hosted: HostedService = service
    assert hosted.name == "users"
    assert hosted.migrations is not None and (hosted.migrations / "env.py").exists()
    await asyncio.to_thread(
        upgrade, hosted.migrations, "users", embedded=True, data_dir=tmp_path, postgres_url=""
    )
    await hosted.start()
    try:
        await hosted.check_ready()
        users = service.client()
        account = await users.register(
            NewAccount(email="ann@shop.example", password="correct horse", name="A")
        )
        session = await users.log_in(Credentials("ann@shop.example", "correct horse"), "127.0.0.1")
        assert await users.authenticate(session.token) == account
        for _ in range(100):
            if published:
                break
            await asyncio.sleep(0.01)
        assert [e.decode(AccountRegistered) for e in published] == [
            AccountRegistered(account_id=account.id, email="ann@shop.example")
        ]
    finally:
        await hosted.stop()
        await infra.close_databases()
        await bus.close()


async def test_hashing_leaves_the_event_loop_free() -> None:
    passwords = Passwords(UsersSettings())  # the production cost, ~30 ms a hash
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    ticker = asyncio.create_task(tick())
    started = time.perf_counter()
    password_hash = await passwords.hash("correct horse")
    elapsed = time.perf_counter() - started
    ticker.cancel()
    assert password_hash.startswith("$argon2id$v=19$m=19456,t=3,p=1$")
    # Had the hash run on the loop, the ticker would not have run at all meanwhile.
    assert ticks >= max(2, int(elapsed * 1000) // 4)
