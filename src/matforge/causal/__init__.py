"""Causal inference for materials design.

A `CausalGraph` (networkx DAG; hidden common causes made explicit), a
`StructuralCausalModel` with one fitted `Mechanism` per node (empirical roots,
polynomial or MLP additive-noise regressions, a Hall-Petch physics mechanism, a logistic
one for binary nodes), do-interventions (hard, shift, scale), counterfactuals by
abduction-action-prediction, identification (backdoor and front-door criteria), effect
estimators (adjustment, front-door, naive) with a sensitivity analysis, a documented
confounded alloy generator with exact interventional answers, and causal design.
"""

from matforge.causal.design import DesignChoice, causal_design, interventional_curve
from matforge.causal.estimation import (
    SensitivityReport,
    adjusted_means,
    fit_regression,
    frontdoor_means,
    linear_sensitivity,
    naive_means,
    polynomial,
)
from matforge.causal.generator import ConfoundedAlloyGenerator
from matforge.causal.graph import CausalGraph
from matforge.causal.identification import (
    backdoor_sets,
    find_backdoor_set,
    frontdoor_sets,
    satisfies_backdoor,
    satisfies_frontdoor,
)
from matforge.causal.mechanisms import (
    EmpiricalRoot,
    HallPetchMechanism,
    LogisticMechanism,
    Mechanism,
    MLPMechanism,
    NonInvertibleError,
    PolynomialMechanism,
)
from matforge.causal.scm import Estimate, Intervention, StructuralCausalModel, parse_intervention

__all__ = [
    "CausalGraph",
    "ConfoundedAlloyGenerator",
    "DesignChoice",
    "EmpiricalRoot",
    "Estimate",
    "HallPetchMechanism",
    "Intervention",
    "LogisticMechanism",
    "MLPMechanism",
    "Mechanism",
    "NonInvertibleError",
    "PolynomialMechanism",
    "SensitivityReport",
    "StructuralCausalModel",
    "adjusted_means",
    "backdoor_sets",
    "causal_design",
    "find_backdoor_set",
    "fit_regression",
    "frontdoor_means",
    "frontdoor_sets",
    "interventional_curve",
    "linear_sensitivity",
    "naive_means",
    "parse_intervention",
    "polynomial",
    "satisfies_backdoor",
    "satisfies_frontdoor",
]
