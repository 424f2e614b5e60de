"""Descriptor locations: register a git repository, clone it safely (git_source), upsert what it declares."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from catalog.models import Dataset, Feature, Location, LocationEntity, LocationStatus, Model, Project, Source
from catalog.permissions import can_write, require_write
from catalog.services import descriptors as dsc
from catalog.services.entities import entity_save
from catalog.services.features import feature_register
from catalog.services.git_source import LocationRefused, git_clone, location_url_check, read_descriptor_files
from portal.models import Job, JobStatus, Team
from portal.services.audit import audit_record, snapshot

REFRESH_KIND = "catalog.refresh_location"
ENTITY_CLASSES = {"project": Project, "model": Model, "dataset": Dataset, "feature": Feature}
MAX_STORED_ERRORS = 200


def location_register(*, actor, url: str, team: Team, enqueue: bool = True) -> tuple[Location, Job | None]:
    """Register a repository for ``team`` and queue its first refresh (unless ``enqueue`` is False)."""
    require_write(actor, team)
    checked = location_url_check(url, user=actor)
    existing = Location.objects.filter(url=checked.url).first()
    if existing:
        raise ValidationError({"url": f"This repository is already registered (location #{existing.pk})."})
    try:
        with transaction.atomic():
            location = Location.objects.create(url=checked.url, team=team, created_by=actor)
            audit_record(action="location.create", obj=location, after={"url": location.url, "team": team.slug})
            job = location_enqueue_refresh(actor=actor, location=location) if enqueue else None
    except IntegrityError as exc:  # registered concurrently
        raise ValidationError({"url": "This repository is already registered."}) from exc
    return location, job


def location_enqueue_refresh(*, actor, location: Location) -> Job:
    """Queue a refresh (members of the location's team and platform admins; actor=None for the schedule)."""
    from portal.services.jobs import job_enqueue

    if actor is not None:
        require_write(actor, location.team)
    queued = location_jobs(location).filter(status=JobStatus.QUEUED).first()
    if queued:
        return queued
    return job_enqueue(
        kind=REFRESH_KIND,
        title=f"Refresh descriptors from {location.url}"[:200],
        user=actor,
        team=location.team,
        target=location,
        params={"location_id": location.pk},
    )


def location_jobs(location: Location):
    content_type = ContentType.objects.get_for_model(Location)
    return Job.objects.filter(kind=REFRESH_KIND, target_type=content_type, target_id=str(location.pk))


def refresh_all_locations() -> list[int]:
    """The scheduled refresh: queue one job per location (not twice). Returns the job ids."""
    return [location_enqueue_refresh(actor=None, location=loc).pk for loc in Location.objects.order_by("pk")]


# --- Refresh -----------------------------------------------------------------------------------


class _Conflict(Exception):
    pass


@dataclass
class _Run:
    location: Location
    actor: Any
    log: Callable[..., None]
    step: Callable[[str], AbstractContextManager[Any]]


def location_refresh(location: Location, *, ctx=None) -> dict[str, Any]:
    """Clone, read, validate and apply; returns a summary. Never raises for problems in the repository."""
    run = _Run(
        location=location,
        actor=location.created_by,
        log=ctx.log if ctx is not None else (lambda message, level="info": None),
        step=ctx.step if ctx is not None else (lambda name: nullcontext()),
    )
    errors: list[dsc.DescriptorError] = []
    with tempfile.TemporaryDirectory(prefix="portal-location-") as tmp:
        try:
            with run.step("Clone"):
                if run.actor is None or not run.actor.is_active:
                    raise LocationRefused("The user who registered this location is gone; register it again.")
                try:
                    checked = location_url_check(location.url, user=run.actor)
                except ValidationError as exc:
                    raise LocationRefused(" ".join(exc.message_dict.get("url", exc.messages))) from exc
                commit = git_clone(checked, Path(tmp) / "repo", home=tmp)
                run.log(f"Cloned {location.url} at {commit[:12]}.")
            with run.step("Read descriptors"):
                files, errors = read_descriptor_files(Path(tmp) / "repo", home=tmp)
        except LocationRefused as exc:
            run.log(str(exc), level="error")
            return _finish(run, LocationStatus.FAILED, "", [dsc.DescriptorError("", None, str(exc))], [])
    with run.step("Validate"):
        descriptors: list[dsc.Descriptor] = []
        for path, content in files:
            found, problems = dsc.parse_descriptor_file(path, content)
            descriptors += found
            errors += problems
        run.log(f"{len(files)} descriptor files, {len(descriptors)} valid documents, {len(errors)} errors.")
        if not files and not errors:
            errors.append(dsc.DescriptorError("", None, "No mlplatform.yaml or model.yaml in the repository."))
    with run.step("Apply"):
        declared, applied = _apply_all(run, descriptors, errors)
    with run.step("Mark orphans"):
        orphaned = _orphan_missing(run, declared, {e.file for e in errors})
    status = LocationStatus.WARNING if errors else LocationStatus.OK
    for error in errors[:50]:
        run.log(f"{error.file or '(repository)'}:{error.line or '-'}: {error.message}", level="warning")
    return _finish(run, status, commit, errors, applied, orphaned)


def _apply_all(run: _Run, descriptors: list[dsc.Descriptor], errors: list[dsc.DescriptorError]):
    first: dict[tuple[str, str], dsc.Descriptor] = {}
    for d in sorted(descriptors, key=lambda d: (d.file, d.line)):
        key = (d.entity_kind, d.name)
        if key in first:
            errors.append(
                dsc.DescriptorError(
                    d.file, d.line, f"duplicate {d.kind} {d.name!r}: already declared in {first[key].where()}; ignored"
                )
            )
        else:
            first[key] = d
    applied: list[tuple[str, str]] = []
    for key, d in sorted(first.items(), key=lambda item: (dsc.KIND_ORDER[item[1].kind], item[1].file, item[1].line)):
        try:
            with transaction.atomic():
                _apply_one(run, d)
            applied.append(key)
        except ValidationError as exc:
            errors.append(dsc.DescriptorError(d.file, d.line, f"{d.kind} {d.name}: {_messages(exc)}"))
        except (PermissionDenied, _Conflict, IntegrityError) as exc:
            errors.append(dsc.DescriptorError(d.file, d.line, f"{d.kind} {d.name}: {exc}"))
    run.log(f"Applied {len(applied)} of {len(first)} declared entities.")
    return set(first), applied


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
    return " ".join(exc.messages)


def _apply_one(run: _Run, d: dsc.Descriptor) -> None:
    kind, location = d.entity_kind, run.location
    owner = _owner(run, d)
    claim = (
        LocationEntity.objects.filter(kind=kind, name=d.name, present=True)
        .exclude(location=location)
        .select_related("location")
        .first()
    )
    if claim:
        raise _Conflict(f"already declared by location #{claim.location_id} ({claim.location.url})")
    existing = ENTITY_CLASSES[kind].objects.filter(name=d.name).select_related("team").first()
    if existing and existing.team_id != owner.pk:
        team = existing.team.slug
        raise _Conflict(f"the name belongs to team {team}'s {kind}; a location does not take over other teams' entries")
    if kind == "feature":
        _apply_feature(run, d, owner)
    else:
        fields = dsc.entity_fields(d, creating=existing is None)
        if "project" in d.spec:
            fields["project"] = Project.objects.filter(name=d.spec["project"]).first()
            if fields["project"] is None:
                raise ValidationError({"spec.project": f"there is no project {d.spec['project']!r} in the catalog"})
        entity_save(
            actor=run.actor, kind=kind, name=d.name, team=owner, source=Source.LOCATION, orphaned=False, **fields
        )
    LocationEntity.objects.update_or_create(
        location=location, kind=kind, name=d.name, defaults={"file": d.file, "line": d.line, "present": True}
    )


def _owner(run: _Run, d: dsc.Descriptor) -> Team:
    slug = d.owner
    if not slug or slug == run.location.team.slug:
        return run.location.team
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise ValidationError({"owner": f"there is no team {slug!r}"})
    if not can_write(run.actor, team):
        raise PermissionDenied(f"owner: {run.actor.username}, who registered this location, may not write for {slug}")
    return team


def _apply_feature(run: _Run, d: dsc.Descriptor, owner: Team) -> None:
    description, tags = d.metadata.get("description", ""), list(d.metadata.get("tags", []))
    registered = feature_register(
        actor=run.actor,
        name=d.name,
        team=owner,
        description=description,
        tags=tags,
        source=Source.LOCATION,
        **dsc.feature_definition(d),
    )
    feature = Feature.objects.select_for_update().get(pk=registered.version.feature_id)
    wanted = {"source": Source.LOCATION, "orphaned": False, "tags": tags, "description": description}
    _update_feature(feature, wanted)


def _update_feature(feature: Feature, wanted: dict[str, Any]) -> None:
    changed = {k: v for k, v in wanted.items() if getattr(feature, k) != v}
    if not changed:
        return
    before = snapshot(feature, fields=changed)
    for key, value in changed.items():
        setattr(feature, key, value)
    feature.save(update_fields=[*changed, "updated_at"])
    audit_record(action="feature.update", obj=feature, before=before, after=snapshot(feature, fields=changed))


def _orphan_missing(run: _Run, declared: set[tuple[str, str]], files_with_errors: set[str]) -> list[tuple[str, str]]:
    """Entities this location produced that no descriptor declares any more: orphaned, never deleted.

    An entity whose file has errors this time is left alone: a typo must not orphan a model."""
    orphaned: list[tuple[str, str]] = []
    for le in run.location.entities.filter(present=True):
        if (le.kind, le.name) in declared or le.file in files_with_errors:
            continue
        with transaction.atomic():
            claimed = LocationEntity.objects.filter(kind=le.kind, name=le.name, present=True).exclude(pk=le.pk)
            entity = ENTITY_CLASSES[le.kind].objects.filter(name=le.name).first()
            if entity is not None and not entity.orphaned and not claimed.exists():
                if le.kind == "feature":
                    _update_feature(entity, {"orphaned": True})
                else:
                    entity_save(actor=None, kind=le.kind, name=le.name, orphaned=True)
            le.present = False
            le.save(update_fields=["present", "updated_at"])
        orphaned.append((le.kind, le.name))
        run.log(f"{le.kind} {le.name} is no longer declared ({le.file}): marked orphaned.", level="warning")
    return orphaned


def _finish(run: _Run, status: str, commit: str, errors: list[dsc.DescriptorError], applied, orphaned=()) -> dict:
    with transaction.atomic():
        location = Location.objects.select_for_update().get(pk=run.location.pk)
        before = snapshot(location, fields=["status", "last_commit", "entity_count"])
        location.status = status
        location.errors = [e.as_dict() for e in errors[:MAX_STORED_ERRORS]]
        location.entity_count = location.entities.filter(present=True).count()
        location.last_commit = commit or location.last_commit
        location.last_refreshed_at = timezone.now()
        location.save()
        after = snapshot(location, fields=["status", "last_commit", "entity_count"]) | {"errors": len(errors)}
        audit_record(action="location.refresh", obj=location, before=before, after=after)
    run.location.refresh_from_db()
    return {
        "location": location.pk,
        "status": str(status),
        "commit": location.last_commit,
        "applied": len(applied),
        "orphaned": len(orphaned),
        "errors": location.errors,
    }
