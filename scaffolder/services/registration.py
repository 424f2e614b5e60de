"""A scaffolded project into the catalog (from its ``mlplatform.yaml``) and its MLflow experiment."""

from __future__ import annotations

from typing import Any

import requests
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from catalog.models import Dataset, Model, Project, Source
from catalog.services import descriptors as dsc
from catalog.services.entities import entity_save
from catalog.services.features import feature_register
from portal.services.audit import audit_record

DESCRIPTOR = "mlplatform.yaml"
ENTITY_CLASSES = {"Model": Model, "Dataset": Dataset}


class RegistrationFailed(Exception):
    pass


def descriptors_check(content: bytes | None, *, name: str) -> list[dsc.Descriptor]:
    """The valid documents of a generated mlplatform.yaml; raises RegistrationFailed on any error."""
    if content is None:
        return []
    found, errors = dsc.parse_descriptor_file(DESCRIPTOR, content)
    if errors:
        first = errors[0]
        raise RegistrationFailed(f"{DESCRIPTOR} line {first.line or '-'}: {first.message}")
    projects = [d for d in found if d.kind == "Project"]
    if any(p.name != name for p in projects):
        other = next(p.name for p in projects if p.name != name)
        raise RegistrationFailed(f"{DESCRIPTOR} declares the project {other!r}, but the run creates {name!r}.")
    return found


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


def register_project(*, run, content: bytes | None, actor) -> tuple[Project, list[str]]:
    """Upsert what the descriptor declares, all or nothing; the project gets the real repository URL."""
    descriptors = descriptors_check(content, name=run.name)
    written: list[str] = []
    try:
        with transaction.atomic():
            if not any(d.kind == "Project" for d in descriptors):
                project, _ = _save_project(run, actor, {"description": str(run.context.get("description", ""))[:2000]})
                written.append(f"Project {run.name}")
            for d in sorted(descriptors, key=lambda d: (dsc.KIND_ORDER[d.kind], d.line)):
                if d.owner and d.owner != run.team.slug:
                    raise RegistrationFailed(
                        f"{d.kind} {d.name}: names owner {d.owner}; the project belongs to {run.team.slug}."
                    )
                if d.kind == "Feature":
                    feature_register(
                        actor=actor,
                        name=d.name,
                        team=run.team,
                        description=d.metadata.get("description", ""),
                        tags=list(d.metadata.get("tags", [])),
                        source=Source.PORTAL,
                        **dsc.feature_definition(d),
                    )
                elif d.kind == "Project":
                    _save_project(run, actor, dsc.entity_fields(d, creating=True))
                else:
                    _save_entity(run, actor, d)
                written.append(f"{d.kind} {d.name}")
            project = Project.objects.get(name=run.name)
            type(run).objects.filter(pk=run.pk).update(project=project)
            audit_record(
                action="scaffolder_run.register",
                obj=run,
                after={"project": project.name, "repo_url": run.repo_url, "entities": written},
            )
    except ValidationError as exc:
        raise RegistrationFailed(f"The catalog refused the project: {_messages(exc)}") from exc
    except PermissionDenied as exc:
        raise RegistrationFailed(str(exc)) from exc
    run.project = project
    return project, written


def _save_project(run, actor, fields: dict[str, Any]) -> tuple[Project, bool]:
    existing = Project.objects.filter(name=run.name).first()
    if existing is not None:
        raise RegistrationFailed(
            f"A project named {run.name} appeared in the catalog meanwhile (team {existing.team.slug}); "
            "nothing was registered."
        )
    fields = fields | {"repo_url": run.repo_url}
    return entity_save(actor=actor, kind="project", name=run.name, team=run.team, source=Source.PORTAL, **fields)


def _save_entity(run, actor, d: dsc.Descriptor) -> None:
    cls = ENTITY_CLASSES[d.kind]
    existing = cls.objects.filter(name=d.name).select_related("team").first()
    if existing is not None and existing.team_id != run.team_id:
        raise RegistrationFailed(f"{d.kind} {d.name} belongs to team {existing.team.slug}; choose another name.")
    fields = dsc.entity_fields(d, creating=existing is None)
    if "project" in d.spec:
        fields["project"] = Project.objects.filter(name=d.spec["project"]).first()
        if fields["project"] is None:
            raise RegistrationFailed(f"{d.kind} {d.name}: there is no project {d.spec['project']!r}.")
    extra = {"source": Source.PORTAL} if existing is None else {}
    entity_save(actor=actor, kind=d.entity_kind, name=d.name, team=run.team, **fields, **extra)


# --- MLflow -------------------------------------------------------------------------------------------


class MlflowUnavailable(Exception):
    pass


def experiment_ensure(*, tracking_uri: str, name: str, tags: dict[str, str]) -> tuple[str, bool]:
    """The id of the experiment ``name`` (created with ``tags`` if missing) and whether it was created."""
    base = tracking_uri.rstrip("/") + "/api/2.0/mlflow/experiments"
    try:
        found = requests.get(f"{base}/get-by-name", params={"experiment_name": name}, timeout=10)
        if found.status_code == 200:
            return str(found.json()["experiment"]["experiment_id"]), False
        if found.status_code != 404:
            raise MlflowUnavailable(f"MLflow at {tracking_uri} answered HTTP {found.status_code}: {found.text[:200]}")
        created = requests.post(
            f"{base}/create",
            json={"name": name, "tags": [{"key": k, "value": v} for k, v in tags.items()]},
            timeout=10,
        )
    except requests.RequestException as exc:
        raise MlflowUnavailable(f"MLflow at {tracking_uri} does not answer: {exc.__class__.__name__}.") from exc
    if created.status_code != 200:
        raise MlflowUnavailable(f"MLflow refused the experiment: HTTP {created.status_code}: {created.text[:200]}")
    return str(created.json()["experiment_id"]), True
