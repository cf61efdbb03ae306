from __future__ import annotations

from peakshop.runtime.supervisor import RestartBackoff


def test_quick_deaths_wait_twice_as_long_each_time_up_to_the_cap() -> None:
    backoff = RestartBackoff(first=0.5, cap=4.0, settle=60.0)
    assert [backoff.delay(uptime=1.0) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_process_that_stayed_up_long_enough_starts_again_at_once() -> None:
    backoff = RestartBackoff(first=0.5, cap=30.0, settle=60.0)
    assert [backoff.delay(uptime=2.0) for _ in range(3)] == [0.5, 1.0, 2.0]
    assert backoff.delay(uptime=60.0) == 0.5
    assert backoff.delay(uptime=59.9) == 1.0
