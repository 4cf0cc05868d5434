import gc

import pytest

from matforge.core.collection import paused_cycle_collection


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_paused_inside_and_restored_after(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    try:
        with paused_cycle_collection():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), paused_cycle_collection():
            raise RuntimeError("boom")
        assert gc.isenabled() is enabled
    finally:
        gc.enable()


def test_overlapping_pauses_in_threads_keep_the_collector_off_until_the_last_leaves() -> None:
    import threading

    gc.enable()
    inside, release_first, release_second = (threading.Event() for _ in range(3))
    seen: dict[str, bool] = {}

    def first() -> None:
        with paused_cycle_collection():
            inside.set()
            release_first.wait(5)

    def second() -> None:
        inside.wait(5)
        with paused_cycle_collection():
            release_first.set()
            worker_one.join(5)
            # The first thread has left its block; this one is still inside.
            seen["while_second_inside"] = gc.isenabled()
            release_second.wait(5)

    worker_one = threading.Thread(target=first)
    worker_two = threading.Thread(target=second)
    try:
        worker_one.start()
        worker_two.start()
        worker_two.join(0.5)
        release_second.set()
        worker_two.join(5)
        assert seen == {"while_second_inside": False}
        assert gc.isenabled()
    finally:
        gc.enable()
