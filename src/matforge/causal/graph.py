"""Causal graphs: a DAG of observed variables, with hidden common causes made explicit.

`CausalGraph` wraps a networkx DiGraph. A pair of observed nodes declared *confounded*
(a bidirected edge A <-> B in the usual notation) gets an explicit latent parent
``U[A,B]``, so every graph query below works on one DAG in which some nodes are
unobserved. Queries: parents, ancestors, descendants, topological order and
d-separation by the reachability ("Bayes-ball") algorithm of Koller & Friedman (2009,
Alg. 3.1), which visits each (node, direction) pair once instead of enumerating paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import networkx as nx

from matforge.core.errors import ConfigError

__all__ = ["CausalGraph", "latent_name"]


def latent_name(a: str, b: str) -> str:
    """The name of the explicit latent common cause of a confounded pair."""
    first, second = sorted((a, b))
    return f"U[{first},{second}]"


class CausalGraph:
    """A DAG over observed and latent nodes.

    Build with `CausalGraph.from_parents({"Y": ["X", "Z"], "X": ["Z"], "Z": []},
    confounded=[("X", "Y")], latent=["L"])`: every observed node is a key; parents may be
    observed nodes or names listed in `latent`.
    """

    def __init__(self, dag: nx.DiGraph, latent: Iterable[str] = ()) -> None:
        self.dag = dag
        self.latent = frozenset(latent)
        unknown = self.latent - set(dag.nodes)
        if unknown:
            raise ConfigError(f"latent node(s) {sorted(unknown)} are not in the graph")
        if not nx.is_directed_acyclic_graph(dag):
            cycle = " -> ".join(str(edge[0]) for edge in nx.find_cycle(dag))
            raise ConfigError(f"the causal graph has a cycle: {cycle} -> {cycle.split(' ')[0]}")
        self._order = list(nx.lexicographical_topological_sort(dag))

    @classmethod
    def from_parents(
        cls,
        parents: Mapping[str, Sequence[str]],
        *,
        confounded: Iterable[Sequence[str]] = (),
        latent: Iterable[str] = (),
    ) -> CausalGraph:
        latent = list(latent)
        dag = nx.DiGraph()
        dag.add_nodes_from(parents)
        dag.add_nodes_from(latent)
        for child, node_parents in parents.items():
            for parent in node_parents:
                if parent == child:
                    raise ConfigError(f"node {child!r} lists itself as a parent")
                if parent not in parents and parent not in latent:
                    raise ConfigError(
                        f"node {child!r}: parent {parent!r} is neither a node of the graph "
                        f"nor a declared latent variable; nodes: {sorted(parents)}"
                    )
                dag.add_edge(parent, child)
        for pair in confounded:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ConfigError(f"a confounded pair needs two different nodes, got {list(pair)}")
            for node in pair:
                if node not in parents:
                    raise ConfigError(
                        f"confounded pair {list(pair)}: {node!r} is not an observed node"
                    )
            hidden = latent_name(*pair)
            latent.append(hidden)
            dag.add_edge(hidden, pair[0])
            dag.add_edge(hidden, pair[1])
        return cls(dag, latent)

    # ----------------------------------------------------------------- structure
    @property
    def nodes(self) -> list[str]:
        """All nodes, latent included, in a fixed topological order."""
        return list(self._order)

    @property
    def observed(self) -> list[str]:
        return [n for n in self._order if n not in self.latent]

    def __contains__(self, node: object) -> bool:
        return node in self.dag

    def check(self, *nodes: str) -> None:
        for node in nodes:
            if node not in self.dag:
                raise ConfigError(f"unknown node {node!r}; the graph has {self.observed}")

    def parents(self, node: str) -> list[str]:
        return sorted(self.dag.predecessors(node), key=self._order.index)

    def observed_parents(self, node: str) -> list[str]:
        return [p for p in self.parents(node) if p not in self.latent]

    def latent_parents(self, node: str) -> list[str]:
        return [p for p in self.parents(node) if p in self.latent]

    def ancestors(self, nodes: Iterable[str]) -> set[str]:
        """The nodes with a directed path into `nodes`, the nodes themselves included."""
        found: set[str] = set()
        for node in nodes:
            found |= nx.ancestors(self.dag, node) | {node}
        return found

    def descendants(self, nodes: Iterable[str]) -> set[str]:
        """The nodes reachable from `nodes` by directed paths, the nodes themselves included."""
        found: set[str] = set()
        for node in nodes:
            found |= nx.descendants(self.dag, node) | {node}
        return found

    def without_edges_out_of(self, nodes: Iterable[str]) -> CausalGraph:
        dag = self.dag.copy()
        dag.remove_edges_from([e for n in nodes for e in list(dag.out_edges(n))])
        return CausalGraph(dag, self.latent)

    def without_edges_into(self, nodes: Iterable[str]) -> CausalGraph:
        dag = self.dag.copy()
        dag.remove_edges_from([e for n in nodes for e in list(dag.in_edges(n))])
        return CausalGraph(dag, self.latent)

    # ----------------------------------------------------------------- d-separation
    def reachable(self, source: str, given: Iterable[str]) -> set[str]:
        """Nodes with an active trail from `source` given the conditioning set `given`."""
        given = set(given)
        conditioned_ancestors = self.ancestors(given) if given else set()
        # (node, arrived_from_child): True = travelling up the trail (we came from a child)
        to_visit = [(source, True)]
        visited: set[tuple[str, bool]] = set()
        reached: set[str] = set()
        while to_visit:
            node, upward = to_visit.pop()
            if (node, upward) in visited:
                continue
            visited.add((node, upward))
            if node not in given:
                reached.add(node)
            if upward and node not in given:
                to_visit += [(p, True) for p in self.dag.predecessors(node)]
                to_visit += [(c, False) for c in self.dag.successors(node)]
            elif not upward:
                if node not in given:  # chain or fork through an unconditioned node
                    to_visit += [(c, False) for c in self.dag.successors(node)]
                if node in conditioned_ancestors:  # collider opened by conditioning
                    to_visit += [(p, True) for p in self.dag.predecessors(node)]
        return reached

    def d_separated(self, xs: Iterable[str], ys: Iterable[str], given: Iterable[str] = ()) -> bool:
        """True where every trail between xs and ys is blocked by `given`."""
        xs, ys, given = set(xs), set(ys), set(given)
        self.check(*xs, *ys, *given)
        if xs & ys:
            return False
        return all(not self.reachable(x, given) & ys for x in xs)

    # ----------------------------------------------------------------- drawing
    def draw(self, path: str | Path | None = None, *, title: str = ""):
        """A layered drawing (latent nodes dashed grey); saved as PNG when `path` is given."""
        from matforge.core.rundir import pyplot

        plt = pyplot()
        layers = {}
        for node in self._order:
            parents = list(self.dag.predecessors(node))
            layers[node] = 1 + max((layers[p] for p in parents), default=-1)
        graph = self.dag.copy()
        nx.set_node_attributes(graph, layers, "layer")
        positions = nx.multipartite_layout(graph, subset_key="layer")
        figure, axes = plt.subplots(figsize=(2 + 1.6 * len(set(layers.values())), 4.5))
        observed = [n for n in graph if n not in self.latent]
        nx.draw_networkx_nodes(
            graph, positions, nodelist=observed, node_color="#cfe3f7", node_size=1800, ax=axes
        )
        nx.draw_networkx_nodes(
            graph,
            positions,
            nodelist=sorted(self.latent),
            node_color="#eeeeee",
            edgecolors="#888888",
            linewidths=1.0,
            node_size=1400,
            ax=axes,
        )
        latent_edges = [e for e in graph.edges if e[0] in self.latent]
        other_edges = [e for e in graph.edges if e[0] not in self.latent]
        nx.draw_networkx_edges(graph, positions, edgelist=other_edges, node_size=1800, ax=axes)
        nx.draw_networkx_edges(
            graph,
            positions,
            edgelist=latent_edges,
            style="dashed",
            edge_color="#888888",
            node_size=1800,
            ax=axes,
        )
        nx.draw_networkx_labels(graph, positions, font_size=8, ax=axes)
        axes.set_title(title)
        axes.axis("off")
        axes.margins(0.15)
        figure.tight_layout()
        if path is not None:
            from matforge.core.rundir import save_figure

            save_figure(path, figure)
        return figure

    def __repr__(self) -> str:
        edges = ", ".join(f"{a}->{b}" for a, b in self.dag.edges)
        return f"CausalGraph({edges}; latent={sorted(self.latent)})"
