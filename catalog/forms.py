"""HTML forms of the catalog; they call the same services as the API."""

from __future__ import annotations

from django import forms

from catalog.models import Lifecycle, Project, WorkloadType
from portal.models import RiskTier, Team


class TagsField(forms.CharField):
    def to_python(self, value) -> list[str]:
        text = super().to_python(value) or ""
        return sorted({t.strip() for t in text.split(",") if t.strip()})

    def prepare_value(self, value):
        return ", ".join(value) if isinstance(value, list) else value


class TeamScopedForm(forms.Form):
    team = forms.ModelChoiceField(queryset=Team.objects.none(), to_field_name="slug", help_text="The owner team.")

    def __init__(self, *args, teams=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = teams if teams is not None else Team.objects.none()


class ModelForm(TeamScopedForm):
    name = forms.CharField(max_length=200, help_text="As registered in MLflow.")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    task = forms.CharField(max_length=50, required=False, help_text="e.g. classification, forecasting, ranking")
    framework = forms.CharField(max_length=50, required=False)
    workload_type = forms.ChoiceField(choices=WorkloadType.choices, initial=WorkloadType.INFERENCE)
    risk_tier = forms.TypedChoiceField(choices=RiskTier.choices, coerce=int, initial=RiskTier.MEDIUM)
    lifecycle = forms.ChoiceField(choices=Lifecycle.choices, initial=Lifecycle.EXPERIMENTAL)
    project = forms.ModelChoiceField(queryset=Project.objects.order_by("name"), to_field_name="name", required=False)
    tags = TagsField(required=False, help_text="Comma-separated.")


class FeatureForm(TeamScopedForm):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    computation_logic = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), help_text="The SQL or code.")
    null_handling = forms.CharField(max_length=50, help_text="e.g. forward_fill, zero_fill, drop")
    data_type = forms.CharField(max_length=50, help_text="e.g. float32")
    source_table = forms.CharField(max_length=200)
