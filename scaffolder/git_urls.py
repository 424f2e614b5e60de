"""URLs of the embedded git server (included at /git/ by portal/urls.py)."""

from django.urls import path, re_path

from scaffolder import git_http

urlpatterns = [
    path("", git_http.git_index, name="git_index"),
    re_path(
        r"^(?P<team>[a-z0-9-]{1,50})/(?P<repo>[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?)\.git/"
        r"(?P<rest>info/refs|git-upload-pack|git-receive-pack)$",
        git_http.git_smart_http,
        name="git_smart_http",
    ),
]
