"""Settings of `matforge active run CONFIG.yaml` (see examples/active_cu_emt.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from matforge.active.structures import PerturbSpec, StructureSpec
from matforge.core.config import JobConfig, StrictModel
from matforge.mlip.job import (
    GapConfig,
    NepConfig,
    NepTrainConfig,
    SnapConfig,
    SoapConfig,
    ZBLConfig,
    _descriptor_kind,
)


class FitSpec(StrictModel):
    alpha: float = Field(1e-8, ge=0, description="ridge strength, relative (standardized)")
    energy_weight: float = Field(1.0, ge=0, description="per energy-per-atom row, 1/eV")
    force_weight: float = Field(1.0, gt=0, description="per force component, A/eV")
    stress_weight: float = Field(0.0, ge=0, description="per stress component, A^3/eV")


class UncertaintySpec(StrictModel):
    measure: Literal["committee", "leverage", "maxvol", "gp_variance"] = Field(
        "maxvol", description="gp_variance (GAP's predicted force sigma) needs a SOAP potential"
    )
    lower: float = Field(description="select configurations at or above this value")
    upper: float | None = Field(None, description="discard (and stop MD) above this value")
    members: int = Field(8, ge=2, description="committee size")
    resample: Literal["atoms", "structures"] = "atoms"
    regularization: float = Field(1e-3, gt=0, description="grades: virtual-row size")
    aggregate: Literal["max", "rms"] = Field(
        "max",
        description="gp_variance: a configuration's value from its atoms' sigmas, the largest "
        "or their root mean square (the predicted force RMSE of the configuration)",
    )

    @model_validator(mode="after")
    def _ordered(self) -> UncertaintySpec:
        if self.upper is not None and self.upper <= self.lower:
            raise ValueError(f"upper ({self.upper}) must exceed lower ({self.lower})")
        return self


class SelectionSpec(StrictModel):
    batch_size: int = Field(4, ge=1, description="configurations labelled per iteration")
    diversity: Literal["greedy", "fps", "none", "random"] | None = Field(
        None, description="default: greedy for grades, fps for a committee"
    )


class StageSpec(StrictModel):
    temperature: float = Field(gt=0, description="K")
    steps: int = Field(ge=1)
    pressure_gpa: float = 0.0


class ExploreSpec(StrictModel):
    kind: Literal["md", "pool"] = "md"
    ensemble: Literal["nvt", "npt"] = "nvt"
    stages: list[StageSpec] = Field(
        default_factory=lambda: [StageSpec(temperature=300, steps=200)], min_length=1
    )
    timestep_fs: float = Field(2.0, gt=0)
    sample_every: int = Field(10, ge=1)
    friction_per_fs: float = Field(0.02, gt=0)
    backend: Literal["torch", "numba"] = "torch"
    pool: Path | None = Field(None, description="kind pool: configurations (any ASE file)")

    @model_validator(mode="after")
    def _pool(self) -> ExploreSpec:
        if self.kind == "pool" and self.pool is None:
            raise ValueError("explore.kind 'pool' needs explore.pool (a file of configurations)")
        return self


class OracleSpec(StrictModel):
    kind: Literal["ase", "pyscf"] = "ase"
    calculator: str = Field("emt", description="'emt' or 'package.module:Class'")
    parameters: dict[str, Any] = Field(default_factory=dict)
    stress: bool = Field(True, description="ase: label periodic cells with their stress")
    basis: str = "sto-3g"
    xc: str | None = Field(None, description="pyscf: functional; none = Hartree-Fock")
    charge: int = 0
    spin: int = 0


class ExecutorSpec(StrictModel):
    kind: Literal["dask", "serial"] = "dask"
    address: str | None = Field(None, description="scheduler of an existing Dask cluster")
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    retries: int = Field(1, ge=0)

    def runner(self, oracle: Any) -> Any:
        """An `OracleRunner` for `oracle` with these settings (a context manager)."""
        from matforge.active.parallel import OracleRunner

        return OracleRunner(
            oracle,
            executor=self.kind,
            address=self.address,
            n_workers=self.n_workers,
            threads_per_worker=self.threads_per_worker,
            timeout_s=self.timeout_s,
            retries=self.retries,
        )


class TestSetSpec(StrictModel):
    kind: Literal["file", "perturbed", "md"] = "md"
    path: Path | None = Field(None, description="kind file: labelled configurations")
    perturb: PerturbSpec = Field(default_factory=PerturbSpec)
    stages: list[StageSpec] = Field(default_factory=list, description="kind md: oracle MD")
    frames_per_stage: int = Field(5, ge=1)
    timestep_fs: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> TestSetSpec:
        if self.kind == "file" and self.path is None:
            raise ValueError("test_set.kind 'file' needs test_set.path")
        if self.kind == "md" and not self.stages:
            raise ValueError("test_set.kind 'md' needs test_set.stages")
        return self


class ActiveConfig(JobConfig):
    database: str | None = Field(
        None, description="ASE database file or postgresql:// URL (default: run dir/active.db)"
    )
    structures: list[StructureSpec] = Field(min_length=1, description="start structures")
    initial: PerturbSpec = Field(default_factory=PerturbSpec)
    potential: Annotated[
        Annotated[SnapConfig, Tag("snap")]
        | Annotated[SoapConfig, Tag("soap")]
        | Annotated[NepConfig, Tag("nep")],
        Discriminator(_descriptor_kind),
    ] = Field(description="SNAP (kind: snap, the default), SOAP for a GAP, or a NEP (kind: nep)")
    gap: GapConfig = Field(default_factory=GapConfig, description="GAP settings (kind: soap)")
    nep: NepTrainConfig = Field(
        default_factory=lambda: NepTrainConfig(method="gradient", adam_steps=300, lbfgs_steps=100),
        description="NEP training of each committee member (kind: nep)",
    )
    reference: ZBLConfig | None = None
    fit: FitSpec = Field(default_factory=FitSpec)
    uncertainty: UncertaintySpec
    selection: SelectionSpec = Field(default_factory=SelectionSpec)
    explore: ExploreSpec = Field(default_factory=ExploreSpec)
    oracle: OracleSpec = Field(default_factory=OracleSpec)
    executor: ExecutorSpec = Field(default_factory=ExecutorSpec)
    test_set: TestSetSpec | None = None
    iterations: int = Field(5, ge=0, description="active-learning iterations after the start")
    max_oracle_calls: int | None = Field(None, ge=1, description="stop at this many labels")

    @model_validator(mode="after")
    def _consistent(self) -> ActiveConfig:
        gap = isinstance(self.potential, SoapConfig)
        if isinstance(self.potential, NepConfig):
            if self.uncertainty.measure != "committee":
                raise ValueError("a NEP learns actively with uncertainty.measure 'committee'")
            if self.selection.diversity in ("fps", "greedy"):
                raise ValueError("with a NEP committee use selection.diversity 'none' or 'random'")
            if self.reference is not None:
                raise ValueError("a NEP takes GPUMD's ZBL as potential.zbl, not a reference")
            return self
        if not gap and set(self.potential.radius) != set(self.potential.weight):
            raise ValueError("potential.radius and potential.weight must name the same elements")
        if gap != (self.uncertainty.measure == "gp_variance"):
            raise ValueError(
                "uncertainty.measure 'gp_variance' goes with a SOAP GAP (potential.kind soap), "
                "and a GAP with 'gp_variance' (committee and grades are for linear SNAP)"
            )
        if not gap and self.uncertainty.aggregate != "max":
            raise ValueError("uncertainty.aggregate 'rms' is for gp_variance")
        if gap and self.selection.diversity == "fps":
            raise ValueError("selection.diversity 'fps' needs SNAP rows; use greedy with a GAP")
        return self

    @property
    def run_path(self) -> Path:
        return self.runs_dir / self.name

    @property
    def database_url(self) -> str:
        return self.database or str(self.run_path / "active.db")
