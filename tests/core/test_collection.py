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
