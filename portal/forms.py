from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from portal.models import Scope, Team, TeamRole

User = get_user_model()


class TeamForm(forms.Form):
    slug = forms.SlugField(max_length=50, help_text="Lowercase letters, digits and hyphens; used in URLs and the API.")
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150, help_text="The user's username or e-mail address.")
    role = forms.ChoiceField(choices=TeamRole.choices, initial=TeamRole.MEMBER)

    def clean_username(self):
        value = self.cleaned_data["username"].strip()
        user = User.objects.filter(is_active=True).filter(username=value).first() or (
            User.objects.filter(is_active=True, email__iexact=value).first() if "@" in value else None
        )
        if user is None:
            raise forms.ValidationError(f"No active user '{value}'.")
        return user


class TokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. 'ci-fraud-pipeline'.")
    owner = forms.ChoiceField(
        label="Token for", help_text="A team token belongs to the team's service account, not to you."
    )
    scopes = forms.MultipleChoiceField(
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Scope.READ],
        help_text="read: GET; write: create and change; promote: request promotions; admin: manage the platform.",
    )
    expires_in_days = forms.TypedChoiceField(
        coerce=int,
        initial=90,
        label="Expires",
        choices=[(7, "in 7 days"), (30, "in 30 days"), (90, "in 90 days"), (365, "in a year"), (0, "never")],
    )

    def __init__(self, *args, teams=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.teams = {t.slug: t for t in teams}
        self.fields["owner"].choices = [("", "Me (personal token)")] + [
            (t.slug, f"Team {t.name} (service account)") for t in teams
        ]
        self.fields["owner"].required = False

    def clean_owner(self) -> Team | None:
        slug = self.cleaned_data.get("owner")
        return self.teams.get(slug) if slug else None
