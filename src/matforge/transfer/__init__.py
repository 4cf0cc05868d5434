"""Transfer learning across alloy systems with permutation-invariant set encoders.

Compositions as sets of (element, fraction) pairs (`batch_compositions`), encoded by Deep
Sets or self-attention (`DeepSetsEncoder`, `AttentionEncoder`) into a `SetRegressor`;
strategies scratch / feature / finetune / l2sp (`train_strategy`), learning curves with
paired differences (`learning_curve`, `paired_differences`), deep ensembles with a
calibration report, and the data: formula tables with line-numbered errors, the bundled
MPEA tasks and CrabNet's Matbench splits.
"""

from matforge.transfer.curves import learning_curve, paired_differences
from matforge.transfer.data import FormulaSet, matbench_split, mpea_task, read_formula_table
from matforge.transfer.encoders import AttentionEncoder, DeepSetsEncoder
from matforge.transfer.ensemble import Ensemble, calibration, train_ensemble
from matforge.transfer.featurize import CompositionBatch, ElementEmbedding, batch_compositions
from matforge.transfer.model import ModelSpec, SetRegressor
from matforge.transfer.training import STRATEGIES, FitSettings, fit, train_strategy

__all__ = [
    "STRATEGIES",
    "AttentionEncoder",
    "CompositionBatch",
    "DeepSetsEncoder",
    "ElementEmbedding",
    "Ensemble",
    "FitSettings",
    "FormulaSet",
    "ModelSpec",
    "SetRegressor",
    "batch_compositions",
    "calibration",
    "fit",
    "learning_curve",
    "matbench_split",
    "mpea_task",
    "paired_differences",
    "read_formula_table",
    "train_ensemble",
    "train_strategy",
]
