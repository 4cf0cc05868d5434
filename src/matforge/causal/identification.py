"""Identification of a causal effect from the graph: backdoor and front-door criteria.

Backdoor (Pearl 2009, Def. 3.3.1): Z is a valid adjustment set for the effect of X on Y
when no node of Z descends from X and Z blocks every trail between X and Y that starts
with an arrow into X, i.e. X and Y are d-separated by Z in the graph without X's outgoing
edges. Then p(y | do(x)) = sum_z p(y | x, z) p(z).

Which sets exist: with R the observed non-descendants of X (outside X and Y), some subset
of R is valid iff the set An(X u Y) n R (ancestors taken in the graph without X's
outgoing edges) is valid (the separator lemma of Tian, Paz & Pearl 1998, as used by van
der Zander, Liskiewicz & Textor 2014). `find_backdoor_set` tests that set and prunes it to
a minimal one; `backdoor_sets` enumerates all minimal sets for small graphs.

Front-door (Pearl 2009, Def. 3.3.3): M intercepts every directed path X -> Y, there is no
open backdoor trail X -> M, and X blocks every backdoor trail M -> Y.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

from matforge.causal.graph import CausalGraph
from matforge.core.errors import ConfigError

__all__ = [
    "backdoor_sets",
    "find_backdoor_set",
    "frontdoor_sets",
    "satisfies_backdoor",
    "satisfies_frontdoor",
]

MAX_ENUMERATED = 18  # candidates beyond this make enumeration (2^n subsets) impractical


def _as_set(nodes: str | Iterable[str]) -> set[str]:
    return {nodes} if isinstance(nodes, str) else set(nodes)


def satisfies_backdoor(
    graph: CausalGraph, x: str | Iterable[str], y: str | Iterable[str], z: Iterable[str]
) -> bool:
    xs, ys, zs = _as_set(x), _as_set(y), set(z)
    graph.check(*xs, *ys, *zs)
    if zs & graph.latent:
        return False
    if zs & (xs | ys):
        return False
    if zs & graph.descendants(xs):
        return False
    return graph.without_edges_out_of(xs).d_separated(xs, ys, zs)


def _candidates(graph: CausalGraph, xs: set[str], ys: set[str], observed: set[str]) -> set[str]:
    return (observed - graph.descendants(xs)) - xs - ys


def _observed(graph: CausalGraph, observed: Iterable[str] | None) -> set[str]:
    if observed is None:
        return set(graph.observed)
    observed = set(observed)
    graph.check(*observed)
    return observed - graph.latent


def find_backdoor_set(
    graph: CausalGraph,
    x: str | Iterable[str],
    y: str | Iterable[str],
    *,
    observed: Iterable[str] | None = None,
) -> frozenset[str] | None:
    """A minimal valid backdoor adjustment set among `observed` (default: every observed
    node), or None when no subset of the observed variables is valid."""
    xs, ys = _as_set(x), _as_set(y)
    graph.check(*xs, *ys)
    allowed = _candidates(graph, xs, ys, _observed(graph, observed))
    cut = graph.without_edges_out_of(xs)
    canonical = cut.ancestors(xs | ys) & allowed
    if not satisfies_backdoor(graph, xs, ys, canonical):
        return None
    chosen = set(canonical)
    for node in sorted(canonical):  # drop what is not needed; the result is minimal
        if satisfies_backdoor(graph, xs, ys, chosen - {node}):
            chosen.discard(node)
    return frozenset(chosen)


def backdoor_sets(
    graph: CausalGraph,
    x: str | Iterable[str],
    y: str | Iterable[str],
    *,
    observed: Iterable[str] | None = None,
    minimal: bool = True,
) -> list[frozenset[str]]:
    """All valid backdoor sets among `observed` (only the minimal ones by default), smallest
    first; empty when none exists."""
    xs, ys = _as_set(x), _as_set(y)
    graph.check(*xs, *ys)
    allowed = sorted(_candidates(graph, xs, ys, _observed(graph, observed)))
    if len(allowed) > MAX_ENUMERATED:
        raise ConfigError(
            f"{len(allowed)} candidate adjustment variables: too many to enumerate "
            f"(at most {MAX_ENUMERATED}); use find_backdoor_set for one minimal set"
        )
    found: list[frozenset[str]] = []
    for size in range(len(allowed) + 1):
        for subset in combinations(allowed, size):
            chosen = frozenset(subset)
            if minimal and any(previous <= chosen for previous in found):
                continue
            if satisfies_backdoor(graph, xs, ys, chosen):
                found.append(chosen)
    return found


def _intercepts(graph: CausalGraph, xs: set[str], ys: set[str], ms: set[str]) -> bool:
    """Every directed path from xs to ys passes through ms."""
    dag = graph.dag.copy()
    dag.remove_nodes_from(ms)
    blocked = CausalGraph(dag, graph.latent - ms)
    return not (blocked.descendants(xs) & ys)


def satisfies_frontdoor(
    graph: CausalGraph, x: str | Iterable[str], y: str | Iterable[str], m: Iterable[str]
) -> bool:
    xs, ys, ms = _as_set(x), _as_set(y), set(m)
    graph.check(*xs, *ys, *ms)
    if not ms or ms & graph.latent or ms & (xs | ys):
        return False
    return (
        _intercepts(graph, xs, ys, ms)
        and satisfies_backdoor(graph, xs, ms, set())
        and satisfies_backdoor(graph, ms, ys, xs)
    )


def frontdoor_sets(
    graph: CausalGraph,
    x: str | Iterable[str],
    y: str | Iterable[str],
    *,
    observed: Iterable[str] | None = None,
) -> list[frozenset[str]]:
    """Minimal sets satisfying the front-door criterion among `observed`, smallest first."""
    xs, ys = _as_set(x), _as_set(y)
    allowed = sorted((_observed(graph, observed) & graph.descendants(xs)) - xs - ys)
    if len(allowed) > MAX_ENUMERATED:
        raise ConfigError(f"{len(allowed)} candidate mediators: too many to enumerate")
    found: list[frozenset[str]] = []
    for size in range(1, len(allowed) + 1):
        for subset in combinations(allowed, size):
            chosen = frozenset(subset)
            if any(previous <= chosen for previous in found):
                continue
            if satisfies_frontdoor(graph, xs, ys, chosen):
                found.append(chosen)
    return found
