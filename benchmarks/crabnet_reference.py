"""Run CrabNet (Wang et al., npj Comput. Mater. 7 (2021) 77) from its PyPI wheel.

The wheel (crabnet 1.0.1, the latest on PyPI) imports itself as ``CrabNet.*`` and does not
ship the mat2vec element embedding it reads; this adapter aliases the package and points
its embedder at the identical mat2vec.csv shipped in CBFV (same authors), without changing
CrabNet's code. Training follows CrabNet's own script for these splits
(matbench_crabnet.py in its repository): batch size 2^round(log2(n) - 4) clipped to
[2^7, 2^12], `fit(epochs=300)` with its default optimizer (Lamb + Lookahead, cyclic
learning rate, SWA), validation data for its checkpoints, test MAE from `predict`.

    pip install -e ".[benchmark]" && pip install --no-deps crabnet==1.0.1
"""

from __future__ import annotations

import contextlib
import importlib
import io
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pandas as pd


def _crabnet():
    import crabnet

    sys.modules.setdefault("CrabNet", crabnet)
    for name in (
        "utils",
        "utils.utils",
        "utils.composition",
        "utils.optim",
        "utils.get_compute_device",
    ):
        sys.modules.setdefault(f"CrabNet.{name}", importlib.import_module(f"crabnet.{name}"))
    kingcrab = importlib.import_module("crabnet.kingcrab")
    model = importlib.import_module("crabnet.model")
    import CBFV

    source = Path(CBFV.__file__).parent / "element_properties" / "mat2vec.csv"
    # kingcrab reads join(dirname(__file__), "..", "data", "element_properties", ...)
    root = Path(tempfile.mkdtemp(prefix="crabnet-"))
    (root / "data" / "element_properties").mkdir(parents=True)
    (root / "data" / "element_properties" / "mat2vec.csv").symlink_to(source)
    (root / "pkg").mkdir()
    kingcrab.dirname = lambda _file: str(root / "pkg")
    _patch_swa(importlib.import_module("crabnet.utils.optim").SWA)
    return kingcrab.CrabNet, model.Model


def _patch_swa(swa: type) -> None:
    """CrabNet's SWA wrapper subclasses torch's Optimizer without calling its __init__;
    torch >= 2 reads hook dictionaries that __init__ creates from every optimizer step.
    Give SWA instances those (empty) dictionaries; nothing of the algorithm changes."""
    if getattr(swa, "_matforge_patched", False):
        return
    original = swa.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        for name in (
            "_optimizer_step_pre_hooks",
            "_optimizer_step_post_hooks",
            "_optimizer_state_dict_pre_hooks",
            "_optimizer_state_dict_post_hooks",
            "_optimizer_load_state_dict_pre_hooks",
            "_optimizer_load_state_dict_post_hooks",
        ):
            if not hasattr(self, name):
                setattr(self, name, OrderedDict())

    swa.__init__ = init
    swa._matforge_patched = True


def run_crabnet(
    train: pd.DataFrame,
    val: pd.DataFrame,
    test: pd.DataFrame,
    *,
    epochs: int = 300,
    seed: int = 42,
    quiet: bool = True,
) -> dict[str, float]:
    """Train on `train` (columns formula, target) with `val` for checkpoints; test MAE."""
    import torch

    network_class, model_class = _crabnet()
    torch.manual_seed(seed)
    np.random.seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sink = io.StringIO()
    start = time.perf_counter()
    output = contextlib.redirect_stdout(sink) if quiet else contextlib.nullcontext()
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder), output:
        model = model_class(
            network_class(compute_device=device).to(device), model_name="bench", verbose=False
        )
        batch = int(np.clip(2 ** round(np.log2(len(train)) - 4), 2**7, 2**12))
        model.load_data(train, batch_size=batch, train=True)
        model.load_data(val, batch_size=batch)
        model.fit(epochs=epochs, losscurve=False)
        seconds = time.perf_counter() - start
        model.load_data(test, batch_size=2**9)
        actual, predicted, *_ = model.predict(loader=model.data_loader)
    return {"mae": float(np.mean(np.abs(actual - predicted))), "seconds": seconds}
