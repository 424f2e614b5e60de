"""Content-addressed feature versions (seed 004, Implementation 2) and what each environment serves."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from catalog.models import Environment, Feature, FeaturePin, FeatureVersion, Source
from catalog.permissions import require_write
from portal.models import Team
from portal.services.audit import audit_record

DEFINITION_FIELDS = ("computation_logic", "null_handling", "data_type", "source_table")
CHANGE_LABELS = {
    "null_handling": "null handling",
    "source_table": "source table",
    "computation_logic": "logic",
    "data_type": "type",
}


def feature_version_hash(definition: dict) -> str:
    """The first 12 hex characters of SHA-256 over the definition, exactly as the seed's code computes it."""
    content = json.dumps({name: definition[name] for name in DEFINITION_FIELDS}, sort_keys=True)
    return hashlib.sha256(content.encode()).hexdigest()[:12]


def describe_changes(old: FeatureVersion, new: dict) -> list[dict]:
    return [
        {"field": name, "label": CHANGE_LABELS[name], "from": getattr(old, name), "to": new[name]}
        for name in ("null_handling", "source_table", "computation_logic", "data_type")
        if getattr(old, name) != new[name]
    ]


@dataclass
class Registered:
    version: FeatureVersion
    created: bool


def feature_register(
    *,
    actor,
    name: str,
    team: Team | None = None,
    description: str = "",
    tags: list | None = None,
    source: str = Source.PORTAL,
    **definition,
) -> Registered:
    """Register a feature definition. Identical → the existing version; changed → a new version."""
    missing = [f for f in DEFINITION_FIELDS if not str(definition.get(f) or "").strip()]
    if missing:
        raise ValidationError({f: "This field is required for a feature definition." for f in missing})
    unknown = set(definition) - set(DEFINITION_FIELDS)
    if unknown:
        raise ValidationError({f: "Unknown field." for f in sorted(unknown)})
    definition = {f: str(definition[f]) for f in DEFINITION_FIELDS}
    version_hash = feature_version_hash(definition)
    with transaction.atomic():
        feature = Feature.objects.select_for_update().filter(name=name).first()
        if feature is None:
            if team is None:
                raise ValidationError({"team": "A new feature needs an owner team."})
            require_write(actor, team)
            feature = Feature(name=name, team=team, description=description, tags=tags or [], source=source)
            feature.full_clean()
            feature.save()
            audit_record(action="feature.create", obj=feature, after={"name": name, "team": team.slug})
        else:
            require_write(actor, feature.team)
        existing = feature.versions.filter(version=version_hash).first()
        if existing:
            return Registered(existing, False)
        previous = feature.versions.order_by("-created_at", "-id").first()
        version = FeatureVersion(
            feature=feature,
            version=version_hash,
            description=description,
            previous=previous,
            changes=describe_changes(previous, definition) if previous else [],
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **definition,
        )
        try:
            with transaction.atomic():
                version.save()
        except IntegrityError:  # registered concurrently: same content, same version
            return Registered(feature.versions.get(version=version_hash), False)
        if description and description != feature.description:
            feature.description = description
            feature.save(update_fields=["description", "updated_at"])
        audit_record(
            action="feature_version.create",
            obj=version,
            after={"feature": name, "version": version_hash, **definition, "changes": version.changes},
        )
    return Registered(version, True)


def feature_served_version(feature: Feature, environment: str) -> FeatureVersion | None:
    """The environment's pinned version, else the feature's latest."""
    pin = FeaturePin.objects.filter(feature=feature, environment=environment).select_related("version").first()
    if pin:
        return pin.version
    return feature.versions.order_by("-created_at", "-id").first()


def feature_pin(*, actor, feature: Feature, environment: str, version: str | None) -> FeaturePin | None:
    """Pin an environment to a version, or unpin it (version=None) so it serves the latest."""
    require_write(actor, feature.team)
    if environment not in Environment.values:
        raise ValidationError({"environment": f"Use one of {', '.join(Environment.values)}."})
    with transaction.atomic():
        current = FeaturePin.objects.filter(feature=feature, environment=environment).first()
        before = {"version": current.version.version} if current else None
        if version is None:
            if current:
                current.delete()
            audit_record(action="feature.unpin", obj=feature, before=before, after={"environment": environment})
            return None
        target = feature.versions.filter(version=version).first()
        if target is None:
            raise ValidationError({"version": f"{feature.name} has no version {version}."})
        pin, _ = FeaturePin.objects.update_or_create(
            feature=feature, environment=environment, defaults={"version": target}
        )
        audit_record(
            action="feature.pin", obj=feature, before=before, after={"environment": environment, "version": version}
        )
    return pin
