"""Active learning of interatomic potentials (`matforge active`).

The loop (`ActiveLearner`, `run_active_learning`): fit a linear potential (SNAP) on the
labels so far (`LinearTrainer`); explore with MD driven by it (`MDExplorer`) or offer a
pool (`PoolExplorer`); measure each candidate's uncertainty (`LinearCommitteeUncertainty`,
`CommitteeUncertainty`, `LeverageGrade`, `MaxVolGrade`; with GAP, `GapTrainer` and its
own predictive variance `GPVarianceUncertainty`; with NEP, a committee of independently
trained NEPs, `NepCommitteeTrainer`); select a batch between thresholds
without near-duplicates (`select_batch`); label it with an expensive oracle
(`CalculatorOracle` for any ASE calculator, `PyscfOracle`) in parallel on Dask
(`OracleRunner`); store everything as it arrives (`ActiveStore`); repeat.
"""

from matforge.active.config import ActiveConfig
from matforge.active.explore import MDExplorer, PoolExplorer, Stage
from matforge.active.gap import GapTrainer, GPVarianceUncertainty
from matforge.active.loop import ActiveLearner, run_active_learning
from matforge.active.model import LinearTrainer, RowWeights
from matforge.active.nep import NepCommitteeTrainer
from matforge.active.oracle import CalculatorOracle, Labels, Oracle, PyscfOracle
from matforge.active.parallel import OracleRunner
from matforge.active.rows import DesignCache
from matforge.active.selection import Selection, select_batch
from matforge.active.store import ActiveStore
from matforge.active.uncertainty import (
    CommitteeUncertainty,
    LeverageGrade,
    LinearCommitteeUncertainty,
    MaxVolGrade,
    Uncertainty,
    UncertaintyEstimate,
    maxvol,
)

__all__ = [
    "ActiveConfig",
    "ActiveLearner",
    "ActiveStore",
    "CalculatorOracle",
    "CommitteeUncertainty",
    "DesignCache",
    "GPVarianceUncertainty",
    "GapTrainer",
    "Labels",
    "LeverageGrade",
    "LinearCommitteeUncertainty",
    "LinearTrainer",
    "MDExplorer",
    "MaxVolGrade",
    "NepCommitteeTrainer",
    "Oracle",
    "OracleRunner",
    "PoolExplorer",
    "PyscfOracle",
    "RowWeights",
    "Selection",
    "Stage",
    "Uncertainty",
    "UncertaintyEstimate",
    "maxvol",
    "run_active_learning",
    "select_batch",
]
