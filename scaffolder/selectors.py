"""Reads of the scaffolder for its pages."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from scaffolder import parameters
from scaffolder.models import STEPS, Run, RunStatus, Template


def file_tree(template: Template) -> list[dict[str, Any]]:
    """The files a template produces with its default values, as an indented tree (names rendered in the sandbox)."""
    config = template.variables
    env = parameters.preview_environment(config)
    context = parameters.preview(config).context
    tree: dict[str, Any] = {}

    def shown(part: str) -> str:
        if "{" not in part:
            return part
        try:
            return env.from_string(part).render(cookiecutter=context)
        except Exception:  # a name that needs the real render: show it as written
            return part

    for path in template.files:
        parts = [shown(p) for p in path.split("/")]
        node = tree
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if child is None:
                break
            node = child
        else:
            node.setdefault(parts[-1], None)
    rows: list[dict[str, Any]] = []

    def walk(node: dict[str, Any], depth: int) -> None:
        for name in sorted(node, key=lambda n: (node[n] is None, n)):
            rows.append({"name": name, "depth": depth, "dir": node[name] is not None})
            if node[name]:
                walk(node[name], depth + 1)

    walk(tree, 0)
    return rows


def template_cards() -> list[dict[str, Any]]:
    return [{"template": t, "tree": file_tree(t)} for t in Template.objects.select_related("team").order_by("title")]


def run_steps(run: Run) -> list[dict[str, Any]]:
    """Every step of a run with its status and duration in the latest job (done earlier = skipped there)."""
    recorded = {s["name"]: s for s in (run.job.steps if run.job else [])}
    rows = []
    for key, title in STEPS:
        step = recorded.get(title)
        if step:
            status = step["status"]
        elif key in (run.progress or {}):
            status = "succeeded"
        else:
            status = "pending" if run.status in (RunStatus.QUEUED, RunStatus.RUNNING) else "unknown"
        rows.append({"key": key, "title": title, "status": status, "seconds": (step or {}).get("duration_seconds")})
    return rows


def adoption(*, since=None) -> dict[str, Any]:
    """How many catalog projects started on the golden path (seed 004: "fraction of new model projects started on
    the platform vs manual"), and from which template commits."""
    from catalog.models import Project

    projects = Project.objects.all()
    if since is not None:
        projects = projects.filter(created_at__gte=since)
    total = projects.count()
    scaffolded = Run.objects.filter(project__in=projects)
    by_template = {}
    for title, commit, count in (
        scaffolded.values_list("template__title", "template_commit").order_by().annotate(n=Count("id"))
    ):
        by_template[f"{title}@{commit[:12]}"] = count
    count = scaffolded.count()
    return {
        "projects": total,
        "scaffolded": count,
        "share": count / total if total else None,
        "by_template": by_template,
    }
