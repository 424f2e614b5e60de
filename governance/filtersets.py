"""One FilterSet for promotion requests, shared by the HTML list and the API."""

from __future__ import annotations

import django_filters as filters

from catalog.models import Environment
from governance.models import Promotion, Status
from portal.models import Team


class PromotionFilterSet(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=Status.choices)
    environment = filters.ChoiceFilter(choices=Environment.choices)
    model = filters.CharFilter(field_name="model__name")
    team = filters.ModelChoiceFilter(field_name="model__team", to_field_name="slug", queryset=Team.objects.all())
    requested_by = filters.CharFilter(field_name="requested_by__username")

    class Meta:
        model = Promotion
        fields = ["status", "environment", "model", "team", "requested_by"]
