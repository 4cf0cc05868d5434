"""The structural causal model: a causal graph with one fitted mechanism per observed node.

Fitting is node by node (each mechanism regresses its node on its observed parents), which
is unbiased where each node's noise is independent of its parents. A hidden common cause
is allowed between root nodes only (declared as a confounded pair): those roots are drawn
jointly, by resampling whole rows of the data, so observational samples keep their
dependence, while an intervention on one of them cuts it, as do() does.

Interventions (`Intervention`): hard (X = v), shift (X += d) and scale (X *= a), the last
two applied to the value the mechanism would have produced (soft interventions).
Counterfactuals by abduction (each unit's noise from its observed values), action
(the interventions) and prediction (the descendants recomputed with the same noise).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import networkx as nx
import numpy as np
import pandas as pd
import torch

from matforge.causal.graph import CausalGraph
from matforge.causal.mechanisms import DTYPE, EmpiricalRoot, Mechanism, NonInvertibleError
from matforge.core.errors import ConfigError

__all__ = ["Estimate", "Intervention", "StructuralCausalModel", "parse_intervention"]

_INTERVENTION = re.compile(r"^\s*([^=+*\s]+)\s*(=|\+=|\*=)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Intervention:
    """do(node = value) (`kind="set"`), node += value ("shift") or node *= value ("scale")."""

    node: str
    value: float
    kind: Literal["set", "shift", "scale"] = "set"

    def __post_init__(self) -> None:
        if self.kind not in ("set", "shift", "scale"):
            raise ConfigError(f"intervention kind must be set, shift or scale, got {self.kind!r}")
        if not math.isfinite(self.value):
            raise ConfigError(f"intervention on {self.node!r}: value must be finite")

    def on(self, natural: torch.Tensor) -> torch.Tensor:
        if self.kind == "set":
            return torch.full_like(natural, self.value)
        if self.kind == "shift":
            return natural + self.value
        return natural * self.value

    def __str__(self) -> str:
        operator = {"set": "=", "shift": "+=", "scale": "*="}[self.kind]
        return f"{self.node}{operator}{self.value:g}"


def parse_intervention(text: str) -> Intervention:
    """'Ni=0.3' (hard), 'Ni+=0.05' (shift) or 'T*=1.1' (scale)."""
    match = _INTERVENTION.match(text)
    if not match:
        raise ConfigError(
            f"cannot read intervention {text!r}: expected NODE=VALUE, NODE+=DELTA or NODE*=FACTOR"
        )
    node, operator, value = match.groups()
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"intervention {text!r}: {value!r} is not a number") from None
    kind = {"=": "set", "+=": "shift", "*=": "scale"}[operator]
    return Intervention(node, number, kind)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Estimate:
    """A mean with its Monte-Carlo standard error (0 where it was computed exactly)."""

    mean: float
    standard_error: float
    exact: bool
    samples: int = 0


def _interventions(items: Sequence[Intervention | str] | None) -> dict[str, Intervention]:
    result: dict[str, Intervention] = {}
    for item in items or ():
        intervention = parse_intervention(item) if isinstance(item, str) else item
        if intervention.node in result:
            raise ConfigError(f"two interventions on node {intervention.node!r}")
        result[intervention.node] = intervention
    return result


class StructuralCausalModel:
    """A `CausalGraph` and a `Mechanism` per observed node."""

    def __init__(self, graph: CausalGraph, mechanisms: Mapping[str, Mechanism]) -> None:
        missing = [n for n in graph.observed if n not in mechanisms]
        extra = [n for n in mechanisms if n not in graph.observed]
        if missing or extra:
            raise ConfigError(
                f"mechanisms must match the observed nodes: missing {missing}, unknown {extra}"
            )
        for node in graph.observed:
            mechanism = mechanisms[node]
            expected = tuple(graph.observed_parents(node))
            if sorted(mechanism.parents) != sorted(expected):
                raise ConfigError(
                    f"node {node!r}: its mechanism takes parents {list(mechanism.parents)} but "
                    f"the graph gives {list(expected)}"
                )
            if graph.latent_parents(node) and expected:
                raise ConfigError(
                    f"node {node!r} has a hidden common cause and observed parents "
                    f"{list(expected)}: its mechanism cannot be fitted by regression on the "
                    "parents; hidden confounders are supported between root nodes"
                )
        self.graph = graph
        self.mechanisms = dict(mechanisms)
        self._groups = self._confounded_groups()

    def _confounded_groups(self) -> list[list[str]]:
        """Root nodes sharing hidden causes, drawn jointly (connected through latents)."""
        linked = nx.Graph()
        for latent in self.graph.latent:
            children = [c for c in self.graph.dag.successors(latent) if c in self.mechanisms]
            linked.add_nodes_from(children)
            linked.add_edges_from(pairwise(children))
        return [
            sorted(group, key=self.graph.nodes.index) for group in nx.connected_components(linked)
        ]

    # ----------------------------------------------------------------- data
    def _columns(
        self, data: pd.DataFrame | Mapping[str, Sequence[float]]
    ) -> dict[str, torch.Tensor]:
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        absent = [n for n in self.graph.observed if n not in frame.columns]
        if absent:
            raise ConfigError(
                f"the data has no column for node(s) {absent}; columns: {list(frame.columns)}"
            )
        columns = {}
        for node in self.graph.observed:
            values = pd.to_numeric(frame[node], errors="coerce").to_numpy(dtype=float)
            if not np.isfinite(values).all():
                row = int(np.flatnonzero(~np.isfinite(values))[0])
                raise ConfigError(
                    f"column {node!r}: non-numeric or missing value {frame[node].iloc[row]!r} "
                    f"in row {row}"
                )
            columns[node] = torch.tensor(values, dtype=DTYPE)
        return columns

    def _parents(self, node: str, values: Mapping[str, torch.Tensor], n: int) -> torch.Tensor:
        parents = self.mechanisms[node].parents
        if not parents:
            return torch.zeros(n, 0, dtype=DTYPE)
        return torch.stack([values[p] for p in parents], dim=1)

    def fit(self, data: pd.DataFrame | Mapping[str, Sequence[float]]) -> StructuralCausalModel:
        columns = self._columns(data)
        n = len(next(iter(columns.values())))
        for node in self.graph.observed:
            self.mechanisms[node].fit(self._parents(node, columns, n), columns[node])
        self._data = columns
        self._rows = n
        return self

    # ----------------------------------------------------------------- sampling
    def _root_noise(self, n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        noise: dict[str, torch.Tensor] = {}
        for group in self._groups:
            for node in group:
                if not isinstance(self.mechanisms[node], EmpiricalRoot):
                    raise ConfigError(
                        f"node {node!r} shares a hidden cause with {group}: it needs an "
                        "empirical root mechanism (rows are resampled jointly)"
                    )
            rows = torch.randint(len(self.mechanisms[group[0]].values), (n,), generator=generator)
            for node in group:
                noise[node] = self.mechanisms[node].values[rows]
        return noise

    def _propagate(
        self,
        noise: Mapping[str, torch.Tensor],
        interventions: Mapping[str, Intervention],
        n: int,
        keep: Mapping[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {}
        for node in self.graph.observed:
            if keep is not None and node in keep:
                values[node] = keep[node]
                continue
            action = interventions.get(node)
            if action is not None and action.kind == "set":
                values[node] = torch.full((n,), action.value, dtype=DTYPE)
                continue
            natural = self.mechanisms[node].apply(self._parents(node, values, n), noise[node])
            values[node] = action.on(natural) if action else natural
        return values

    def sample(
        self,
        n: int,
        interventions: Sequence[Intervention | str] | None = None,
        *,
        seed: int | None = 0,
    ) -> pd.DataFrame:
        """n draws from the observational (no interventions) or interventional distribution."""
        actions = _interventions(interventions)
        self.graph.check(*actions)
        generator = torch.Generator()
        generator.manual_seed(seed if seed is not None else torch.seed())
        noise = self._root_noise(n, generator)
        for node in self.graph.observed:
            if node not in noise:
                noise[node] = self.mechanisms[node].draw_noise(n, generator)
        with torch.no_grad():
            values = self._propagate(noise, actions, n)
        return pd.DataFrame({k: v.numpy() for k, v in values.items()})

    def interventional_mean(
        self,
        node: str,
        interventions: Sequence[Intervention | str] | None = None,
        *,
        samples: int = 20000,
        seed: int = 0,
    ) -> Estimate:
        """E[node | do(...)]: exact where every mechanism it depends on is affine with
        zero-mean noise (means propagate through affine maps), else Monte Carlo."""
        actions = _interventions(interventions)
        self.graph.check(node, *actions)
        exact = self._affine_mean(node, actions)
        if exact is not None:
            return Estimate(exact, 0.0, True)
        draws = torch.as_tensor(self.sample(samples, list(actions.values()), seed=seed)[node])
        return Estimate(
            float(draws.mean()), float(draws.std() / math.sqrt(samples)), False, samples
        )

    def _affine_mean(self, target: str, actions: Mapping[str, Intervention]) -> float | None:
        means: dict[str, float] = {}
        needed = self.graph.ancestors([target]) - self.graph.latent
        for node in self.graph.observed:
            if node not in needed:
                continue
            action = actions.get(node)
            if action is not None and action.kind == "set":
                means[node] = action.value
                continue
            form = self.mechanisms[node].linear_form()
            if form is None:
                return None
            intercept, coefficients = form
            parents = self.mechanisms[node].parents
            natural = intercept + self.mechanisms[node].noise_mean()
            natural += sum(float(c) * means[p] for c, p in zip(coefficients, parents, strict=True))
            means[node] = (
                action.on(torch.tensor(natural, dtype=DTYPE)).item() if action else natural
            )
        return means[target]

    # ----------------------------------------------------------------- counterfactuals
    def abduct(
        self, units: pd.DataFrame | Mapping[str, Sequence[float]]
    ) -> dict[str, torch.Tensor]:
        """Each unit's noise per node (invertible mechanisms only)."""
        columns = self._columns(units)
        n = len(next(iter(columns.values())))
        noise = {}
        for node in self.graph.observed:
            mechanism = self.mechanisms[node]
            if isinstance(mechanism, EmpiricalRoot):
                noise[node] = columns[node]
            elif mechanism.invertible:
                with torch.no_grad():
                    noise[node] = mechanism.abduct(self._parents(node, columns, n), columns[node])
        return noise

    def counterfactual(
        self,
        units: pd.DataFrame | Mapping[str, Sequence[float]],
        interventions: Sequence[Intervention | str],
    ) -> pd.DataFrame:
        """What each unit's values would have been under the interventions."""
        actions = _interventions(interventions)
        if not actions:
            raise ConfigError("a counterfactual needs at least one intervention")
        self.graph.check(*actions)
        columns = self._columns(units)
        n = len(next(iter(columns.values())))
        changed = self.graph.descendants(actions) - self.graph.latent
        for node in sorted(changed - set(actions), key=self.graph.nodes.index):
            mechanism = self.mechanisms[node]
            if not mechanism.invertible:
                raise NonInvertibleError(
                    f"counterfactual through node {node!r}: its {mechanism.kind} mechanism is "
                    "not invertible (the unit's noise is not identified)"
                )
        for node, action in actions.items():
            if action.kind != "set" and not self.mechanisms[node].invertible:
                raise NonInvertibleError(
                    f"a {action.kind} intervention on {node!r} needs its natural value, and its "
                    f"{self.mechanisms[node].kind} mechanism is not invertible"
                )
        noise = self.abduct({k: v.numpy() for k, v in columns.items()})
        keep = {k: v for k, v in columns.items() if k not in changed}
        with torch.no_grad():
            values = self._propagate(noise, actions, n, keep=keep)
        return pd.DataFrame({k: v.numpy() for k, v in values.items()})
