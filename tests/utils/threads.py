"""A leak check for modules that share one server: import ``no_leaked_threads`` into the test module.

It replaces the suite's autouse check (tests/conftest.py) there: the module-scoped uvicorn server grows its worker
pool (AnyIO worker threads) while requests run; the pool belongs to the server, which stops it at teardown. Any
other new non-daemon thread is still a leak. (Module-scoped fixtures are set up before it, so the server's own
threads are in the "before" set.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

SERVER_POOL_THREAD = "AnyIO worker thread"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    owned = [t.name for t in leaked if t.name != SERVER_POOL_THREAD]
    assert not owned, f"test leaked threads: {owned}"
