"""Simulated time for tests of code that takes a clock and a sleep."""

from __future__ import annotations


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
