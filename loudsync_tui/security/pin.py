"""Session PINs: generated for people to read out, checked in constant time, guessing limited."""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field

PIN_DIGITS = 6
MIN_PIN_DIGITS = 4
WRONG_PIN_LIMIT = 5
"""Wrong PINs from one address allowed per window; the next is RATE_LIMITED."""
WRONG_PIN_WINDOW = 60.0
MAX_TRACKED_ADDRESSES = 10_000
"""Addresses with recent wrong PINs the host remembers at most (about 1 MiB)."""


def generate_pin(digits: int = PIN_DIGITS) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(digits))


def check_pin_format(pin: str) -> str | None:
    """None if `pin` is usable as a session PIN, else why not."""
    if not pin.isdigit() or not pin.isascii():
        return "a PIN is digits only"
    if len(pin) < MIN_PIN_DIGITS:
        return f"a PIN has at least {MIN_PIN_DIGITS} digits"
    if len(pin) > 32:
        return "a PIN has at most 32 digits"
    return None


def pin_matches(given: str | None, expected: str) -> bool:
    """Constant time, so response timing says nothing about how much of a guess was right."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(slots=True)
class PinGuard:
    """Counts wrong PINs per address in a sliding window; no I/O, the caller passes `now`.

    Memory is bounded two ways, since every fresh address a guesser uses (an IPv6 host
    has billions) would otherwise stay forever: `sweep` drops addresses whose failures
    have all left the window (the host calls it on its tick), and past `max_addresses`
    the address that failed least recently is forgotten first.
    """

    limit: int = WRONG_PIN_LIMIT
    window: float = WRONG_PIN_WINDOW
    max_addresses: int = MAX_TRACKED_ADDRESSES
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)

    def __len__(self) -> int:
        return len(self._failures)

    def blocked(self, address: str, now: float) -> bool:
        failures = self._failures.get(address)
        if not failures:
            return False
        while failures and now - failures[0] >= self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return False
        return len(failures) >= self.limit

    def failed(self, address: str, now: float) -> None:
        failures = self._failures.get(address)
        if failures is None:
            failures = self._failures[address] = deque(maxlen=self.limit)
        else:
            self._failures.move_to_end(address)
        failures.append(now)
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)

    def sweep(self, now: float) -> None:
        """Forget every address whose last wrong PIN has left the window.

        Addresses are kept in the order they last failed, so the scan stops at the
        first one still inside the window: a sweep costs what it removes, plus one.
        """
        while self._failures:
            address, failures = next(iter(self._failures.items()))
            if failures and now - failures[-1] < self.window:
                return
            del self._failures[address]
