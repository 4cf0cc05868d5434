"""d-separation and the backdoor / front-door criteria against brute-force path checks."""

from __future__ import annotations

from itertools import combinations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matforge.causal.graph import CausalGraph
from matforge.causal.identification import (
    backdoor_sets,
    find_backdoor_set,
    frontdoor_sets,
    satisfies_backdoor,
    satisfies_frontdoor,
)
from matforge.core.errors import ConfigError


def _path_open(dag: nx.DiGraph, path: list[str], given: set[str]) -> bool:
    """The textbook rule, node by node along one path."""
    for before, node, after in zip(path, path[1:], path[2:], strict=False):
        collider = dag.has_edge(before, node) and dag.has_edge(after, node)
        if collider:
            if not ({node} | nx.descendants(dag, node)) & given:
                return False
        elif node in given:
            return False
    return True


def brute_d_separated(dag: nx.DiGraph, x: str, y: str, given: set[str]) -> bool:
    skeleton = dag.to_undirected()
    return not any(_path_open(dag, path, given) for path in nx.all_simple_paths(skeleton, x, y))


def brute_backdoor(dag: nx.DiGraph, x: str, y: str, z: set[str]) -> bool:
    if z & (nx.descendants(dag, x) | {x, y}):
        return False
    skeleton = dag.to_undirected()
    for path in nx.all_simple_paths(skeleton, x, y):
        into_x = dag.has_edge(path[1], x)
        if into_x and _path_open(dag, path, z):
            return False
    return True


@st.composite
def dags(draw) -> tuple[nx.DiGraph, list[str]]:
    n = draw(st.integers(3, 7))
    names = [f"v{i}" for i in range(n)]
    dag = nx.DiGraph()
    dag.add_nodes_from(names)
    for j in range(n):
        for i in range(j):
            if draw(st.booleans()):
                dag.add_edge(names[i], names[j])
    return dag, names


@settings(max_examples=150, deadline=None)
@given(dags(), st.data())
def test_d_separation_equals_path_enumeration(case, data) -> None:
    dag, names = case
    x, y = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
    if x == y:
        return
    given = set(data.draw(st.sets(st.sampled_from([n for n in names if n not in (x, y)]))))
    graph = CausalGraph(dag)
    expected = brute_d_separated(dag, x, y, given)
    assert graph.d_separated([x], [y], given) == expected
    assert nx.is_d_separator(dag, {x}, {y}, given) == expected


@settings(max_examples=120, deadline=None)
@given(dags(), st.data())
def test_backdoor_sets_equal_brute_force(case, data) -> None:
    dag, names = case
    x, y = data.draw(st.sampled_from(names)), data.draw(st.sampled_from(names))
    if x == y:
        return
    hidden = set(data.draw(st.sets(st.sampled_from([n for n in names if n not in (x, y)]))))
    graph = CausalGraph(dag, latent=hidden)
    observed = [n for n in names if n not in hidden and n not in (x, y)]
    valid = []
    for size in range(len(observed) + 1):
        for subset in combinations(observed, size):
            z = set(subset)
            ok = brute_backdoor(dag, x, y, z)
            assert satisfies_backdoor(graph, x, y, z) == ok
            if ok and not any(v <= z for v in valid):
                valid.append(z)
    assert [set(s) for s in backdoor_sets(graph, x, y)] == valid
    found = find_backdoor_set(graph, x, y)
    if not valid:
        assert found is None  # none exists, and the canonical-set test says so
    else:
        assert found is not None
        assert brute_backdoor(dag, x, y, set(found))
        assert not any(brute_backdoor(dag, x, y, set(found) - {v}) for v in found)  # minimal


def test_m_bias_adjusting_for_the_collider_is_wrong() -> None:
    # X <- A -> M <- B -> Y, X -> Y: M is a pre-treatment collider
    graph = CausalGraph.from_parents(
        {"A": [], "B": [], "M": ["A", "B"], "X": ["A"], "Y": ["X", "B"]}
    )
    assert satisfies_backdoor(graph, "X", "Y", set())
    assert not satisfies_backdoor(graph, "X", "Y", {"M"})
    assert satisfies_backdoor(graph, "X", "Y", {"M", "A"})
    assert satisfies_backdoor(graph, "X", "Y", {"M", "B"})
    assert backdoor_sets(graph, "X", "Y") == [frozenset()]
    assert find_backdoor_set(graph, "X", "Y") == frozenset()


def test_no_valid_set_with_a_hidden_confounder_but_front_door_works() -> None:
    graph = CausalGraph.from_parents({"X": [], "M": ["X"], "Y": ["M"]}, confounded=[("X", "Y")])
    assert find_backdoor_set(graph, "X", "Y") is None
    assert backdoor_sets(graph, "X", "Y") == []
    assert frontdoor_sets(graph, "X", "Y") == [frozenset({"M"})]
    # a direct edge X -> Y breaks the front door
    direct = CausalGraph.from_parents(
        {"X": [], "M": ["X"], "Y": ["M", "X"]}, confounded=[("X", "Y")]
    )
    assert not satisfies_frontdoor(direct, "X", "Y", {"M"})


def test_descendants_of_the_treatment_are_never_adjusted_for() -> None:
    graph = CausalGraph.from_parents({"Z": [], "X": ["Z"], "M": ["X"], "Y": ["M", "Z"]})
    assert backdoor_sets(graph, "X", "Y") == [frozenset({"Z"})]
    assert not satisfies_backdoor(graph, "X", "Y", {"Z", "M"})


def test_malformed_graphs_name_the_node() -> None:
    with pytest.raises(ConfigError, match="cycle"):
        CausalGraph.from_parents({"A": ["C"], "B": ["A"], "C": ["B"]})
    with pytest.raises(ConfigError, match=r"'B'.*parent 'Q'"):
        CausalGraph.from_parents({"A": [], "B": ["Q"]})
    with pytest.raises(ConfigError, match="'Z' is not an observed node"):
        CausalGraph.from_parents({"A": [], "B": []}, confounded=[("A", "Z")])
    with pytest.raises(ConfigError, match="itself"):
        CausalGraph.from_parents({"A": ["A"]})
