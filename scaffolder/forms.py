"""The form a template's cookiecutter.json becomes; validation is the service's (the API runs the same)."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.urls import reverse

from portal.models import Team
from portal.permissions import is_platform_admin
from scaffolder import parameters
from scaffolder.models import Template

PREFIX = "v_"
AUTO = "auto_"


def writable_teams(user):
    teams = Team.objects.order_by("slug")
    return teams if is_platform_admin(user) else teams.filter(memberships__user=user).distinct()


def field_name(variable: str) -> str:
    return PREFIX + variable


class JsonObjectField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})

    def to_python(self, value):
        text = super().to_python(value)
        if not text:
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise forms.ValidationError('Give a JSON object: {"key": "value"}.')
        return data

    def prepare_value(self, value):
        return json.dumps(value, indent=2) if isinstance(value, dict) else value


class RunForm(forms.Form):
    """One field per visible variable (``v_<name>``), plus the owner team.

    A derived text field (a Jinja default such as ``project_slug``) carries a hidden ``auto_<name>`` with the
    value the portal computed; if the submitted value still equals it, the user did not change it and the
    template computes it itself."""

    team = forms.ModelChoiceField(
        label="Owner team", queryset=Team.objects.none(), to_field_name="slug", help_text="Teams you belong to."
    )

    def __init__(self, *args, template: Template, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.template = template
        self.config = template.variables
        self.variables = [v for v in parameters.variables(self.config) if v.kind not in ("private", "portal")]
        teams = writable_teams(user)
        self.fields["team"].queryset = teams
        if len(teams) == 1:
            self.fields["team"].initial = teams[0].slug
        self.cleaned = None
        self.user_values: dict[str, Any] = {}
        previewed = parameters.preview(self.config, self.given_values())
        preview_url = reverse("scaffolder:preview", args=[template.pk])
        for var in self.variables:
            self.fields[field_name(var.name)] = self._field(var, previewed, preview_url)
            if var.derived:
                initial = previewed.context.get(var.name, "") if var.name not in previewed.unavailable else ""
                if isinstance(initial, dict):
                    initial = json.dumps(initial, indent=2)
                self.fields[AUTO + var.name] = forms.CharField(
                    required=False, widget=forms.HiddenInput, initial=initial
                )

    # --- fields -------------------------------------------------------------------------------------
    def _field(self, var: parameters.Variable, previewed: parameters.Preview, preview_url: str) -> forms.Field:
        default = previewed.context.get(var.name)
        unavailable = previewed.unavailable.get(var.name)
        help_text = ""
        if var.name == self.template.name_variable:
            help_text = "Names the repository and the catalog project. " + parameters.NAME_HELP
        attrs: dict[str, Any] = {}
        if var.kind == "choice":
            field: forms.Field = forms.ChoiceField(
                choices=parameters.choice_options(self.config, var, previewed.context), initial=str(var.choices[0])
            )
        elif var.kind == "boolean":
            field = forms.BooleanField(required=False, initial=bool(var.raw))
        elif var.kind == "dict":
            field = JsonObjectField(required=False, initial=default if isinstance(default, dict) else var.raw)
        elif var.kind == "computed":
            field = forms.CharField(required=False, disabled=True, initial="" if unavailable else default)
            help_text = "Set by the template."
        else:
            field = forms.CharField(required=False, max_length=parameters.MAX_TEXT, initial=default or "")
            attrs["autocomplete"] = "off"
            if var.derived:
                attrs["data-derived"] = "true"
                help_text = (help_text + " Filled in from the other fields; type to override.").strip()
        if unavailable and var.kind != "computed":
            help_text = (help_text + " Its default is computed when the template is rendered.").strip()
        field.label = var.label
        field.help_text = help_text
        field.widget.attrs.update(attrs)
        return field

    def given_values(self) -> dict[str, Any]:
        """The user's values from the bound data: untouched derived fields are left to the template."""
        if not self.is_bound:
            return {}
        values: dict[str, Any] = {}
        for var in self.variables:
            name = field_name(var.name)
            if var.kind == "computed":
                continue
            if var.kind == "boolean":
                values[var.name] = self.data.get(name) in ("on", "true", "True", "1")
                continue
            if name not in self.data:
                continue
            raw = self.data.get(name, "")
            if var.kind == "dict":
                try:
                    raw = json.loads(raw) if raw.strip() else {}
                except ValueError:
                    continue  # the field reports it
            if var.derived and self.untouched(var.name, raw):
                continue
            values[var.name] = raw
        return values

    def untouched(self, variable: str, value: Any) -> bool:
        """Does ``value`` still equal the default the portal filled in (so the template computes it)?"""
        auto = self.data.get(AUTO + variable)
        if auto is None:
            return False
        if isinstance(value, dict):
            try:
                return json.loads(auto) == value
            except ValueError:
                return False
        return value == auto

    def auto_values(self) -> dict[str, Any]:
        """Derived defaults recomputed from the current values (for fields the user did not override)."""
        previewed = parameters.preview(self.config, self.given_values())
        return {
            var.name: previewed.context.get(var.name, "")
            for var in self.variables
            if (var.derived or var.kind == "computed") and var.name not in previewed.unavailable
        }

    def clean(self):
        cleaned = super().clean()
        team = cleaned.get("team")
        values = {}
        for var in self.variables:
            name = field_name(var.name)
            if var.kind == "computed" or name not in cleaned:
                continue
            if var.derived and self.untouched(var.name, cleaned[name]):
                continue
            values[var.name] = cleaned[name]
        from scaffolder.services.runs import clean_for_team

        self.user_values = values
        self.cleaned = clean_for_team(self.template, team, values)
        self.add_service_errors(self.cleaned.errors)
        return cleaned

    def add_service_errors(self, errors: dict[str, list[str]]) -> None:
        """Errors keyed by variable go next to their field; others on top, naming the variable."""
        for var_name, messages in errors.items():
            target = field_name(var_name)
            if target in self.fields:
                self.add_error(target, messages)
            else:
                self.add_error(None, [f"{var_name}: {m}" for m in messages])

    def variable_rows(self) -> list[dict[str, Any]]:
        return [{"field": self[field_name(var.name)], "auto": self.auto_field(var.name)} for var in self.variables]

    def auto_field(self, variable: str):
        return self[AUTO + variable] if AUTO + variable in self.fields else None


class TemplateRegisterForm(forms.Form):
    url = forms.CharField(
        label="Repository URL",
        max_length=500,
        help_text="The git repository of the cookiecutter template (https://; file:// where the portal allows it).",
        widget=forms.TextInput(attrs={"placeholder": "https://git.example.com/platform/templates.git"}),
    )
    ref = forms.CharField(
        label="Branch, tag or commit", max_length=200, required=False, help_text="Empty: the default branch."
    )
    subdirectory = forms.CharField(
        max_length=300, required=False, help_text="Where cookiecutter.json is, if not at the root."
    )
    title = forms.CharField(max_length=200)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, help_text="Empty: the template's _description."
    )
    tags = forms.CharField(required=False, help_text="Comma-separated. Empty: the template's _tags.")
    team = forms.ModelChoiceField(
        label="Owner team", queryset=Team.objects.order_by("slug"), to_field_name="slug", required=False
    )
