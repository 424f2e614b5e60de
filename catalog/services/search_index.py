"""Keeps ``SearchDoc`` rows in step with the catalog.

Saves and deletes through the ORM reach it by signals (connected in
``catalog.apps``); bulk writes, which send no signals, call
``search_index_refresh(kind, ids)`` themselves. Every refresh recomputes the
rows from the entities, so calling it too often is harmless, and
``search_index_rebuild()`` (``manage.py search_reindex``) rebuilds from scratch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save

from catalog.models import Dataset, Deployment, Feature, Model, ModelVersion, Project, SearchDoc
from portal.models import Team

INDEXED = {"model": Model, "project": Project, "dataset": Dataset, "feature": Feature}
CHUNK = 2_000


def _model_aliases(model_ids: list[int]) -> dict[int, set[str]]:
    """Aliases of every version plus the environments deployed to, per model: two queries for any number."""
    aliases: dict[int, set[str]] = defaultdict(set)
    for model_id, names in (
        ModelVersion.objects.filter(model_id__in=model_ids).exclude(aliases=[]).values_list("model_id", "aliases")
    ):
        aliases[model_id].update(n for n in names or [] if isinstance(n, str))
    for model_id, environment in Deployment.objects.filter(model_version__model_id__in=model_ids).values_list(
        "model_version__model_id", "environment"
    ):
        aliases[model_id].add(environment)
    return aliases


def _doc(kind: str, entity, team_slug: str, aliases: Iterable[str] = ()) -> SearchDoc:
    tags = [t for t in entity.tags or [] if isinstance(t, str)]
    description = (entity.description or "")[:200]
    return SearchDoc(
        kind=kind,
        object_id=entity.pk,
        name=entity.name,
        team_id=entity.team_id,
        team=team_slug,
        description=description,
        lifecycle=getattr(entity, "lifecycle", "") or "",
        task=getattr(entity, "task", "") or "",
        framework=getattr(entity, "framework", "") or "",
        tags=SearchDoc.join(tags),
        aliases=SearchDoc.join(aliases),
        text=" ".join([entity.name, team_slug, *tags, entity.description or ""]).lower(),
    )


def search_index_refresh(kind: str, ids: Iterable[int]) -> int:
    """Recompute the rows of these entities (deleted ones lose theirs). A handful of queries per 2,000 ids."""
    cls = INDEXED[kind]
    ids = sorted(set(ids))
    written = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        entities = list(cls.objects.filter(pk__in=chunk).select_related("team"))
        aliases = _model_aliases([e.pk for e in entities]) if kind == "model" else {}
        docs = [_doc(kind, e, e.team.slug, aliases.get(e.pk, ())) for e in entities]
        with transaction.atomic():
            SearchDoc.objects.filter(kind=kind, object_id__in=chunk).delete()
            SearchDoc.objects.bulk_create(docs)
        written += len(docs)
    return written


def search_index_rebuild() -> int:
    """Every row from scratch."""
    with transaction.atomic():
        SearchDoc.objects.all().delete()
        return sum(
            search_index_refresh(kind, cls.objects.values_list("pk", flat=True)) for kind, cls in INDEXED.items()
        )


# Signals: ORM saves and deletes keep the index current without every writer remembering to.


def _entity_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        search_index_refresh(instance.kind, [instance.pk])


def _entity_deleted(sender, instance, **kwargs):
    SearchDoc.objects.filter(kind=instance.kind, object_id=instance.pk).delete()


def _version_changed(sender, instance, raw=False, **kwargs):
    if raw:
        return
    model_id = instance.model_id if isinstance(instance, ModelVersion) else instance.model_version.model_id
    # A model deleted with its versions has no row left to refresh; the filter finds nothing then.
    search_index_refresh("model", [model_id])


def _team_saved(sender, instance, created=False, raw=False, **kwargs):
    if raw or created:
        return
    stale = SearchDoc.objects.filter(team_id=instance.pk).exclude(team=instance.slug)
    for kind, ids in _ids_by_kind(stale).items():
        search_index_refresh(kind, ids)


def _ids_by_kind(docs) -> dict[str, list[int]]:
    by_kind: dict[str, list[int]] = defaultdict(list)
    for kind, object_id in docs.values_list("kind", "object_id"):
        by_kind[kind].append(object_id)
    return by_kind


def _after_migrate(sender, using="default", **kwargs):
    """Build the index once for a catalog that existed before it (or was bulk-loaded without it)."""
    if sender.name != "catalog":
        return
    if SearchDoc.objects.using(using).exists():
        return
    if any(cls.objects.using(using).exists() for cls in INDEXED.values()):
        search_index_rebuild()


def connect_signals() -> None:
    for cls in INDEXED.values():
        post_save.connect(_entity_saved, sender=cls, dispatch_uid=f"search-{cls.__name__}-saved")
        post_delete.connect(_entity_deleted, sender=cls, dispatch_uid=f"search-{cls.__name__}-deleted")
    for cls in (ModelVersion, Deployment):
        post_save.connect(_version_changed, sender=cls, dispatch_uid=f"search-{cls.__name__}-saved")
        post_delete.connect(_version_changed, sender=cls, dispatch_uid=f"search-{cls.__name__}-deleted")
    post_save.connect(_team_saved, sender=Team, dispatch_uid="search-team-saved")
    post_migrate.connect(_after_migrate, dispatch_uid="search-after-migrate")
