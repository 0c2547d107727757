"""The affected part of the service graph as SVG, drawn on the server (no script).

Services are placed in columns by how far they stand from the origin along the graph's
edges (the origin first, its dependents to the right), so the eye follows the blast
radius from left to right; the origin is marked. Names are escaped by the template.
"""

from __future__ import annotations

from dataclasses import dataclass

from baton.correlate.topology import Topology

COL_W, ROW_H, BOX_W, BOX_H, PAD = 190, 56, 160, 32, 16


@dataclass(frozen=True)
class Node:
    name: str
    x: int
    y: int
    origin: bool


@dataclass(frozen=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True)
class Drawing:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    box_w: int = BOX_W
    box_h: int = BOX_H


def affected(graph: Topology, services: list[str], origin: str | None) -> Drawing:
    names = list(dict.fromkeys([*([origin] if origin else []), *services]))
    shown = set(names)
    depth = {n: 0 for n in names}
    if origin in shown:  # hops from the origin towards what stands on it
        frontier, seen = [origin], {origin}
        while frontier:
            nxt = []
            for cur in frontier:
                for n in names:
                    if n not in seen and cur in graph.needs(n):
                        depth[n] = depth[cur] + 1
                        seen.add(n)
                        nxt.append(n)
            frontier = nxt
        last = max(depth.values(), default=0) + 1
        for n in names:
            if n not in seen:
                depth[n] = last
    rows: dict[int, int] = {}
    nodes = []
    for n in names:
        col = depth[n]
        row = rows.get(col, 0)
        rows[col] = row + 1
        nodes.append(Node(n, PAD + col * COL_W, PAD + row * ROW_H, n == origin))
    at = {node.name: node for node in nodes}
    edges = [
        Edge(at[dep].x + BOX_W, at[dep].y + BOX_H // 2, at[n].x, at[n].y + BOX_H // 2)
        for n in names
        for dep in graph.needs(n)
        if dep in at
    ]
    width = PAD * 2 + (max(depth.values(), default=0) + 1) * COL_W
    height = PAD * 2 + max(rows.values(), default=1) * ROW_H
    return Drawing(nodes, edges, width, height)
