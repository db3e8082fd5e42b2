"""lynkr serve's server helpers: Daphne's arguments, the open-files limit, malloc arenas, the frozen heap."""

from __future__ import annotations

import resource

import pytest

from lynkr_site.serve import daphne_argv, nofile_raise


def test_daphne_has_no_access_log_unless_asked() -> None:
    argv = daphne_argv("127.0.0.1", 8080, "")
    assert argv[argv.index("-v") + 1] == "0"  # -v 1 would write Daphne's access line for every request
    assert "--access-log" not in argv
    assert argv[-1] == "lynkr_site.asgi:application"


def test_daphne_access_log_when_configured() -> None:
    argv = daphne_argv("0.0.0.0", 9000, "-")
    assert argv[argv.index("--access-log") + 1] == "-"
    assert argv[argv.index("--port") + 1] == "9000"


def test_nofile_raised_to_the_hard_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2:
        pytest.skip("hard limit too low to lower the soft one")
    lowered = 1 if hard == resource.RLIM_INFINITY else hard // 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(lowered, 64), hard))
    try:
        new = nofile_raise()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == new
        assert new == (hard if hard != resource.RLIM_INFINITY else 65536)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_malloc_arenas_capped_unless_the_operator_chose(monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from lynkr_site import serve

    calls: list[tuple[int, int]] = []

    class Libc:
        def mallopt(self, param: int, value: int) -> int:
            calls.append((param, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    assert serve.malloc_arenas_limit() is True
    assert calls == [(-8, 2)]  # M_ARENA_MAX
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # glibc reads it itself: left alone
    assert serve.malloc_arenas_limit() is False
    assert calls == [(-8, 2)]


def test_the_start_up_heap_is_frozen_and_full_collections_made_rarer() -> None:
    import gc
    import sys

    from lynkr_site import serve
    from providers.adapters import ADAPTERS

    gc.unfreeze()
    thresholds = gc.get_threshold()
    alive_at_start = {"a": [1]}
    try:
        frozen = serve.heap_freeze()
        assert frozen == gc.get_freeze_count() > 10_000  # the test process's heap, Django's included
        assert "lynkr_site.asgi" in sys.modules
        assert all(target.partition(":")[0] in sys.modules for target in ADAPTERS.values())
        # Out of the collector's generations, so a full collection no longer walks it; later objects are in them.
        created_later = {"b": [2]}
        tracked = gc.get_objects()
        assert not any(o is alive_at_start for o in tracked)
        assert any(o is created_later for o in tracked)
        # Young collections wait for 50,000 new objects instead of 700, full ones for 100 second-generation
        # collections instead of 10; the middle generation keeps CPython's default.
        expected = (serve.YOUNG_COLLECTION_AFTER, thresholds[1], serve.FULL_COLLECTION_AFTER)
        assert gc.get_threshold() == expected == (50_000, 10, 100)
    finally:
        gc.unfreeze()  # give the rest of the suite its usual collector
        gc.set_threshold(*thresholds)
