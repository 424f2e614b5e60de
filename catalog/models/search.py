"""A denormalised search index: one narrow row per searchable entity.

Search reads one table instead of four, with the text it matches on
pre-lowered in one column (a trigram GIN index covers it on PostgreSQL), and
the facet values (team, task, framework, lifecycle, tags, aliases) stored
beside it so counting facets needs no joins and no JSON decoding. Rows are
derived data: ``catalog.services.search_index`` keeps them in step with the
entities and can rebuild them at any time (``manage.py search_reindex``).
"""

from __future__ import annotations

from django.db import models

SEPARATOR = "|"  # tags and aliases are stored as "|a|b|" so "|a|" matches one whole value


class SearchDoc(models.Model):
    kind = models.CharField(max_length=16)
    object_id = models.PositiveIntegerField()
    name = models.CharField(max_length=200)
    team_id = models.PositiveIntegerField(db_index=True)
    team = models.CharField(max_length=50)
    description = models.CharField(max_length=200, blank=True)
    lifecycle = models.CharField(max_length=20, blank=True)
    task = models.CharField(max_length=50, blank=True)
    framework = models.CharField(max_length=50, blank=True)
    tags = models.TextField(blank=True, help_text='"|tag|tag|"')
    aliases = models.TextField(blank=True, help_text='"|alias|environment|" over all versions (models only)')
    text = models.TextField(help_text="lower-cased name, team, tags and description: what a query matches")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="catalog_searchdoc_unique")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"

    @staticmethod
    def join(values) -> str:
        values = sorted({v for v in values if isinstance(v, str) and v})
        return SEPARATOR + SEPARATOR.join(values) + SEPARATOR if values else ""

    @staticmethod
    def split(joined: str) -> list[str]:
        return [v for v in joined.split(SEPARATOR) if v]
