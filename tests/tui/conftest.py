from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from loudsync_tui.store import AppStore
from loudsync_tui.tui.app import LoudsyncApp
from loudsync_tui.tui.settings import AppSettings
from tests.tui.fakes import T0, FakeServices


@pytest.fixture(autouse=True)
def utc() -> Iterator[None]:
    """Clock columns show local time; UTC makes them the same on every machine."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


@pytest.fixture
def fakes() -> FakeServices:
    return FakeServices()


@pytest.fixture
def store() -> AppStore:
    made = AppStore()
    made.clock = lambda: T0
    return made


@pytest.fixture
def app(store: AppStore, fakes: FakeServices) -> LoudsyncApp:
    settings = AppSettings.for_device("Grace", "dev-grace")
    return LoudsyncApp(store=store, settings=settings, services=fakes.services())
