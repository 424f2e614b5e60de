"""Pages of descriptor locations: list + register form, detail with per-file errors, refresh button."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from catalog.models import Location
from catalog.permissions import can_write, require_read
from catalog.services import locations as location_service
from portal.models import Team
from portal.permissions import is_platform_admin


def writable_teams(user):
    teams = Team.objects.order_by("slug")
    return teams if is_platform_admin(user) else teams.filter(memberships__user=user).distinct()


class LocationForm(forms.Form):
    url = forms.CharField(
        label="Repository URL",
        max_length=500,
        help_text="An https:// git URL. The portal reads every mlplatform.yaml and model.yaml in it.",
        widget=forms.TextInput(attrs={"placeholder": "https://git.example.com/team/repo.git", "autocomplete": "off"}),
    )
    team = forms.ModelChoiceField(label="Owner team", queryset=Team.objects.none(), to_field_name="slug")

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        teams = writable_teams(user)
        self.fields["team"].queryset = teams
        if len(teams) == 1:
            self.fields["team"].initial = teams[0].slug
        if is_platform_admin(user):
            self.fields["url"].help_text += " Platform admins may also use file:// URLs where the portal allows it."


@login_required
def location_list(request: HttpRequest) -> HttpResponse:
    require_read(request.user)
    form = LocationForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            location, job = location_service.location_register(
                actor=request.user, url=form.cleaned_data["url"], team=form.cleaned_data["team"]
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Registered. The first refresh is queued as job #{job.pk}.")
            return redirect(location)
    locations = Location.objects.visible_to(request.user).select_related("team", "created_by")
    context = {"locations": locations, "form": form, "can_register": form.fields["team"].queryset.exists()}
    return render(request, "catalog/locations.html", context, status=400 if form.errors else 200)


@login_required
def location_detail(request: HttpRequest, pk: int) -> HttpResponse:
    require_read(request.user)
    location = get_object_or_404(Location.objects.select_related("team", "created_by"), pk=pk)
    errors_by_file: dict[str, list[dict]] = {}
    for error in location.errors:
        errors_by_file.setdefault(error.get("file") or "(repository)", []).append(error)
    context = {
        "location": location,
        "errors_by_file": sorted(errors_by_file.items()),
        "entities": location.entities.order_by("-present", "kind", "name"),
        "latest_job": location_service.location_jobs(location).order_by("-created_at", "-id").first(),
        "can_refresh": can_write(request.user, location.team),
    }
    return render(request, "catalog/location_detail.html", context)


@login_required
@require_POST
def location_refresh(request: HttpRequest, pk: int) -> HttpResponse:
    require_read(request.user)
    location = get_object_or_404(Location, pk=pk)
    job = location_service.location_enqueue_refresh(actor=request.user, location=location)
    messages.success(request, f"Refresh queued as job #{job.pk}.")
    return redirect(location)
