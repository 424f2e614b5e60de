"""Lay out a model version's lineage as a small left-to-right graph, drawn as SVG by the template."""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse

NODE_W, NODE_H, GAP_Y, COL_X = 210, 44, 14, (10, 280, 520, 760)


@dataclass
class Node:
    id: str
    label: str
    sub: str
    column: int
    row: int = 0
    url: str = ""
    missing: bool = False

    @property
    def x(self) -> int:
        return COL_X[self.column]

    @property
    def y(self) -> int:
        return 10 + self.row * (NODE_H + GAP_Y)

    @property
    def cx_right(self) -> int:
        return self.x + NODE_W

    @property
    def cy(self) -> int:
        return self.y + NODE_H // 2


def lineage_graph(mv, features: list[dict], snapshots, deployments) -> dict:
    inputs: list[Node] = []
    for snap in snapshots:
        inputs.append(
            Node(
                f"data-{snap.pk}",
                snap.dataset.name,
                f"snapshot {snap.digest[:12]}",
                0,
                url=reverse("catalog:dataset_detail", args=[snap.dataset.name]),
            )
        )
    if not snapshots:
        inputs.append(
            Node("data", "Data snapshot", mv.data_snapshot[:28] or "missing", 0, missing=not mv.data_snapshot)
        )
    for f in features:
        inputs.append(
            Node(
                f"feat-{f['name']}",
                f["name"],
                f"v{f['version']}" + ("" if f["known"] else " (unregistered)"),
                0,
                url=reverse("catalog:feature_detail", args=[f["name"]]),
                missing=not f["known"],
            )
        )
    if not features:
        inputs.append(Node("features", "Feature versions", "missing", 0, missing=True))
    inputs.append(
        Node(
            "code",
            "Code commit",
            mv.code_commit[:12] or "missing",
            0,
            missing=not mv.code_commit,
            url=reverse("catalog:commit_detail", args=[mv.code_commit]) if mv.code_commit else "",
        )
    )
    inputs.append(
        Node(
            "env",
            "Environment",
            (mv.image_digest[:19] + "…") if mv.image_digest else "missing",
            0,
            missing=not mv.image_digest,
        )
    )
    for row, node in enumerate(inputs):
        node.row = row
    middle = max(0, (len(inputs) - 1) // 2)
    run = Node(
        "run",
        "Training run",
        f"{len(mv.params)} params · {len(mv.metrics)} metrics",
        1,
        row=middle,
        missing=not (mv.params and mv.metrics),
    )
    version = Node("version", f"{mv.model.name}", f"version {mv.version}", 2, row=middle, url=mv.get_absolute_url())
    outputs = [
        Node(f"dep-{d.pk}", d.environment, d.endpoint[:28] or "deployed", 3, row=middle + i)
        for i, d in enumerate(deployments)
    ]
    nodes = [*inputs, run, version, *outputs]
    edges = [(n, run) for n in inputs] + [(run, version)] + [(version, o) for o in outputs]
    height = 20 + max(n.row for n in nodes) * (NODE_H + GAP_Y) + NODE_H
    return {
        "nodes": nodes,
        "edges": [{"x1": a.cx_right, "y1": a.cy, "x2": b.x, "y2": b.cy, "missing": a.missing} for a, b in edges],
        "width": COL_X[3] + NODE_W + 10,
        "height": height,
        "node_w": NODE_W,
        "node_h": NODE_H,
    }
