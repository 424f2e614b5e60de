"""Descriptor locations against real git repositories (git init / add / commit, cloned over file://)."""

from __future__ import annotations

import http.server
import os
import subprocess
import threading
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from jsonschema import Draft202012Validator

from catalog.models import Dataset, Feature, Location, LocationEntity, Model, Project
from catalog.services.descriptors import descriptor_schema, parse_descriptor_file
from catalog.services.entities import entity_save
from catalog.services.git_source import address_problem
from catalog.services.locations import refresh_all_locations
from portal.models import AuditEvent, Job, JobStatus, RiskTier, Team
from tests.conftest import free_port

pytestmark = pytest.mark.django_db

SEED_MODEL = """apiVersion: mlplatform/v1
kind: Model
metadata:
  name: fraud-detection
spec:
  type: inference
  framework: pytorch
  resources:
    gpu: T4
    memory: 16Gi
  scaling:
    minReplicas: 1
    maxReplicas: 10
"""

PLATFORM = """apiVersion: mlplatform/v1
kind: Project
metadata:
  name: demand-platform
  description: Forecasting platform
  tags: [forecasting]
spec:
  repoUrl: https://git.example.com/forecasting/platform
  lifecycle: production
---
apiVersion: mlplatform/v1
kind: Feature
metadata:
  name: orders_7d_avg
  description: Average orders over 7 days
spec:
  computationLogic: AVG(orders) OVER (ROWS 6 PRECEDING)
  nullHandling: zero_fill
  dataType: float32
  sourceTable: orders_daily
---
apiVersion: mlplatform/v1
kind: Dataset
metadata:
  name: orders-daily
  tags: [orders]
spec:
  uri: s3://forecasting/orders/daily/
"""


def model_doc(name: str, **spec: str) -> str:
    lines = "".join(f"  {k}: {v}\n" for k, v in ({"type": "batch"} | spec).items())
    return f"apiVersion: mlplatform/v1\nkind: Model\nmetadata:\n  name: {name}\nspec:\n{lines}"


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]
    done = subprocess.run(["git", "-C", str(repo), *identity, *args], capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def make_repo(tmp_path):
    """make_repo({"path": "text"}) -> a committed git repository; commit(repo, files, remove) changes it."""
    counter = iter(range(1000))

    def make(files: dict[str, str | bytes], symlinks: dict[str, str] | None = None) -> Path:
        repo = tmp_path / f"repo{next(counter)}"
        repo.mkdir()
        git(repo, "init", "--quiet", "--initial-branch=main")
        commit(repo, files, symlinks=symlinks)
        return repo

    return make


def commit(repo: Path, files: dict[str, str | bytes], remove=(), symlinks: dict[str, str] | None = None) -> None:
    for name, content in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for name, target in (symlinks or {}).items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, repo / name)
    for name in remove:
        (repo / name).unlink()
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "change")


@pytest.fixture(autouse=True)
def location_settings(settings):
    settings.CATALOG_ALLOW_FILE_LOCATIONS = True
    settings.CATALOG_ALLOW_PRIVATE_HOSTS = False
    settings.CATALOG_ALLOW_HTTP_LOCATIONS = False
    return settings


@pytest.fixture
def as_user(api_client, make_token):
    def login(user, *scopes):
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {make_token(user, *(scopes or ('write',)))}")
        return api_client

    return login


@pytest.fixture
def register(as_user, demo_users, django_capture_on_commit_callbacks):
    """POST a location and run its refresh job; returns (response, location or None)."""

    def post(url: str, team: str = "forecasting", user: str = "admin"):
        with django_capture_on_commit_callbacks(execute=True):
            response = as_user(demo_users[user]).post(
                "/api/v1/catalog/locations/", {"url": url, "team": team}, format="json"
            )
        location = Location.objects.filter(pk=response.json().get("id")).first()
        return response, location

    return post


@pytest.fixture
def refresh(as_user, demo_users, django_capture_on_commit_callbacks):
    def post(location: Location, user: str = "admin"):
        with django_capture_on_commit_callbacks(execute=True):
            response = as_user(demo_users[user]).post(f"/api/v1/catalog/locations/{location.pk}/refresh/")
        location.refresh_from_db()
        return response

    return post


def messages_of(location: Location) -> list[tuple[str, int | None, str]]:
    return [(e["file"], e["line"], e["message"]) for e in location.errors]


# --- The happy path -----------------------------------------------------------------------


def test_seed_model_yaml_is_accepted_exactly_as_written():
    descriptors, errors = parse_descriptor_file("model.yaml", SEED_MODEL.encode())
    assert errors == [] and [(d.kind, d.name, d.line) for d in descriptors] == [("Model", "fraud-detection", 1)]
    Draft202012Validator.check_schema(descriptor_schema())


def test_admin_registers_refreshes_and_a_removed_model_is_orphaned(make_repo, register, refresh):
    repo = make_repo({"services/scoring/model.yaml": SEED_MODEL, "mlplatform.yaml": PLATFORM})
    response, location = register(f"file://{repo}")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["job_url"].endswith(f"/jobs/{body['job']}/") and body["team"] == "forecasting"
    assert Job.objects.get(pk=body["job"]).status == JobStatus.SUCCEEDED
    location.refresh_from_db()
    assert (location.status, location.errors, location.entity_count) == ("ok", [], 4)
    assert location.last_commit == git(repo, "rev-parse", "HEAD").strip()
    model = Model.objects.get(name="fraud-detection")
    assert (model.team.slug, model.source, model.workload_type, model.framework, model.task) == (
        "forecasting",
        "location",
        "inference",
        "pytorch",
        "",
    )
    assert model.risk_tier == RiskTier.MEDIUM
    assert model.spec == {
        "resources": {"gpu": "T4", "memory": "16Gi"},
        "scaling": {"minReplicas": 1, "maxReplicas": 10},
    }
    project = Project.objects.get(name="demand-platform")
    assert (project.lifecycle, project.repo_url, project.tags, project.source) == (
        "production",
        "https://git.example.com/forecasting/platform",
        ["forecasting"],
        "location",
    )
    feature = Feature.objects.get(name="orders_7d_avg")
    assert (feature.source, feature.versions.get().null_handling) == ("location", "zero_fill")
    assert Dataset.objects.get(name="orders-daily").uri == "s3://forecasting/orders/daily/"
    entity = LocationEntity.objects.get(location=location, kind="model")
    assert (entity.file, entity.line, entity.present) == ("services/scoring/model.yaml", 1, True)

    commit(repo, {}, remove=["services/scoring/model.yaml"])
    assert refresh(location).status_code == 202
    model.refresh_from_db()
    assert model.orphaned and location.entity_count == 3 and location.status == "ok"
    assert not LocationEntity.objects.get(location=location, kind="model").present
    assert not Project.objects.get(name="demand-platform").orphaned
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        "location.create",
        "location.refresh",
        "model.create",
        "model.update",
        "project.create",
        "feature.create",
        "feature_version.create",
        "dataset.create",
    } <= actions

    commit(repo, {"services/scoring/model.yaml": SEED_MODEL})
    refresh(location)
    model.refresh_from_db()
    assert not model.orphaned and location.entity_count == 4


def test_refresh_keeps_a_raised_risk_tier_and_is_quiet_when_nothing_changed(make_repo, register, refresh):
    repo = make_repo({"model.yaml": SEED_MODEL})
    _, location = register(f"file://{repo}")
    entity_save(actor=None, kind="model", name="fraud-detection", risk_tier=RiskTier.HIGH)
    writes = AuditEvent.objects.filter(action="model.update").count()
    refresh(location)
    assert Model.objects.get(name="fraud-detection").risk_tier == RiskTier.HIGH
    assert AuditEvent.objects.filter(action="model.update").count() == writes


# --- Hostile and broken descriptors ---------------------------------------------------------


def billion_laughs() -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefghi", "bcdefghij", strict=True):
        lines.append(f"{cur}: &{cur} [{','.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_hostile_yaml_is_refused_per_file_and_the_rest_applies(make_repo, register, tmp_path):
    marker = tmp_path / "pwned"
    repo = make_repo(
        {
            "bomb/mlplatform.yaml": billion_laughs(),
            "many/model.yaml": "a: &a x\nb: [" + ", ".join(["*a"] * 150) + "]\n",
            "exec/model.yaml": f"apiVersion: !!python/object/apply:os.system ['touch {marker}']\nkind: Model\n",
            "huge/model.yaml": "# " + "x" * (300 * 1024) + "\n",
            "ok/model.yaml": model_doc("survivor"),
        }
    )
    _, location = register(f"file://{repo}")
    location.refresh_from_db()
    errors = {file: (line, message) for file, line, message in messages_of(location)}
    assert "alias bomb" in errors["bomb/mlplatform.yaml"][1]
    assert "more than 100 YAML aliases" in errors["many/model.yaml"][1]
    assert errors["exec/model.yaml"][0] == 1 and "python/object/apply:os.system" in errors["exec/model.yaml"][1]
    assert "larger than 256 KiB" in errors["huge/model.yaml"][1]
    assert not marker.exists()
    assert location.status == "warning" and location.entity_count == 1
    assert list(Model.objects.values_list("name", flat=True)) == ["survivor"]


def test_schema_error_names_file_line_and_field_and_the_other_document_applies(make_repo, register):
    text = model_doc("good-one") + "---\n" + model_doc("bad-one", type="realtime")
    repo = make_repo({"models/model.yaml": text})
    _, location = register(f"file://{repo}")
    location.refresh_from_db()
    assert messages_of(location) == [
        ("models/model.yaml", 13, "$.spec.type: 'realtime' is not one of ['inference', 'batch', 'training']")
    ]
    assert list(Model.objects.values_list("name", flat=True)) == ["good-one"]


def test_invalid_yaml_syntax_names_its_line(make_repo, register):
    repo = make_repo({"model.yaml": "apiVersion: mlplatform/v1\nkind: [Model\nmetadata: {}\n"})
    _, location = register(f"file://{repo}")
    location.refresh_from_db()
    [(file, line, message)] = messages_of(location)
    assert file == "model.yaml" and line in (3, 4) and message.startswith("invalid YAML")


def test_feature_with_a_missing_field_is_an_error_and_writes_nothing(make_repo, register):
    text = PLATFORM.split("---\n")[1].replace("  nullHandling: zero_fill\n", "")
    repo = make_repo({"mlplatform.yaml": text})
    _, location = register(f"file://{repo}")
    location.refresh_from_db()
    assert messages_of(location) == [("mlplatform.yaml", 6, "$.spec: 'nullHandling' is a required property")]
    assert not Feature.objects.exists() and location.status == "warning"


def test_duplicate_name_across_two_files_applies_the_first(make_repo, register):
    repo = make_repo({"a/model.yaml": model_doc("dup", framework="sklearn"), "b/model.yaml": model_doc("dup")})
    _, location = register(f"file://{repo}")
    location.refresh_from_db()
    [(file, line, message)] = messages_of(location)
    assert (file, line) == ("b/model.yaml", 1) and "already declared in a/model.yaml line 1" in message
    assert Model.objects.get(name="dup").framework == "sklearn"


def test_symlinked_descriptor_is_skipped_and_nothing_outside_the_clone_is_read(make_repo, register, tmp_path):
    outside = tmp_path / "outside.yaml"
    outside.write_text(model_doc("leaked"))
    repo = make_repo({"ok/model.yaml": model_doc("inside")}, symlinks={"evil/model.yaml": str(outside)})
    _, location = register(f"file://{repo}")
    location.refresh_from_db()
    [(file, line, message)] = messages_of(location)
    assert file == "evil/model.yaml" and "symbolic link" in message
    assert list(Model.objects.values_list("name", flat=True)) == ["inside"]


def test_a_broken_file_does_not_orphan_its_entities(make_repo, register, refresh):
    repo = make_repo({"model.yaml": model_doc("steady")})
    _, location = register(f"file://{repo}")
    commit(repo, {"model.yaml": model_doc("steady") + "  bogus: [\n"})
    refresh(location)
    assert location.status == "warning" and not Model.objects.get(name="steady").orphaned


def test_descriptors_do_not_take_over_other_teams_or_other_locations_entries(make_repo, register, refresh):
    entity_save(actor=None, kind="model", name="credit-owned", team=Team.objects.get(slug="credit"))
    _, first = register(f"file://{make_repo({'model.yaml': model_doc('shared')})}")
    second = make_repo({"model.yaml": model_doc("shared") + "---\n" + model_doc("credit-owned")})
    _, location = register(f"file://{second}")
    location.refresh_from_db()
    found = {message.split(":")[0]: message for _, _, message in messages_of(location)}
    assert f"already declared by location #{first.pk}" in found["Model shared"]
    assert "belongs to team credit" in found["Model credit-owned"]
    assert Model.objects.get(name="credit-owned").team.slug == "credit"


def test_owner_override_needs_the_registering_users_rights(make_repo, register, refresh, demo_users, monkeypatch):
    repo = make_repo({"model.yaml": model_doc("moved", owner="fraud")})
    _, location = register(f"file://{repo}")  # by admin: may write for fraud
    assert Model.objects.get(name="moved").team.slug == "fraud"
    # As if eli (maintainer of forecasting, not in fraud) had registered it; file:// stays readable for the test.
    monkeypatch.setattr("catalog.services.git_source.is_platform_admin", lambda user: True)
    location.created_by = demo_users["eli"]
    location.save()
    commit(repo, {"model.yaml": model_doc("moved2", owner="fraud")})
    refresh(location)
    [(_, _, message)] = messages_of(location)
    assert "eli, who registered this location, may not write for fraud" in message


# --- URLs and permissions --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://169.254.169.254/latest/meta-data/", "cloud metadata"),
        ("https://127.0.0.1/repo.git", "loopback"),
        ("https://localhost/repo.git", "loopback"),
        ("https://2130706433/repo.git", "loopback"),
        ("https://[::1]/repo.git", "loopback"),
        ("https://[::ffff:127.0.0.1]/repo.git", "loopback"),
        ("https://[fe80::1]/repo.git", "link-local"),
        ("https://10.1.2.3/repo.git", "private"),
        ("https://192.168.0.1/repo.git", "private"),
        ("https://0.0.0.0/repo.git", "unspecified"),
        ("http://example.com/repo.git", "Use an https:// URL"),
        ("git://example.com/repo.git", "Use an https:// URL"),
        ("ext::sh -c touch% pwned", "URL characters"),
        ("ext::ssh-evil", "Use an https:// URL"),
        ("https://evil.example\\@127.0.0.1/repo.git", "backslashes"),
        ("https://example.com:99999/repo.git", "port"),
        ("ssh://git@example.com/repo.git", "Use an https:// URL"),
        ("git@example.com:team/repo.git", "turned off"),
        ("https://user:secret@example.com/repo.git", "no credentials"),
        ("--upload-pack=touch", "start with '-'"),
        ("https://example.com/repo.git?x=1", "query"),
    ],
)
def test_refused_urls_are_a_400_on_the_url_field_and_create_nothing(register, url, expected):
    response, _ = register(url)
    assert response.status_code == 400, response.json()
    assert expected in response.json()["fields"]["url"][0]
    assert not Location.objects.exists() and not Job.objects.exists()


def test_address_checks():
    assert address_problem("169.254.169.254") == "link-local address (the cloud metadata service)"
    assert address_problem("fc00::1") and address_problem("224.0.0.1") and address_problem("64:ff9b::7f00:1")
    assert address_problem("8.8.8.8") is None and address_problem("2606:4700:4700::1111") is None


def test_file_urls_are_for_platform_admins_where_allowed(make_repo, register, settings):
    repo = make_repo({"model.yaml": model_doc("m")})
    response, _ = register(f"file://{repo}", user="eli")
    assert response.status_code == 400 and "Only platform admins" in response.json()["fields"]["url"][0]
    settings.CATALOG_ALLOW_FILE_LOCATIONS = False
    response, _ = register(str(repo))
    assert response.status_code == 400 and "turned off" in response.json()["fields"]["url"][0]
    assert not Location.objects.exists()


def test_registering_needs_membership_of_the_team(make_repo, register, as_user, demo_users):
    repo = make_repo({"model.yaml": model_doc("m")})
    response, _ = register(f"file://{repo}", team="forecasting", user="dana")
    assert response.status_code == 403 and "forecasting" in response.json()["message"]
    response, _ = register(f"file://{repo}", team="fraud", user="olga")
    assert response.status_code == 403
    assert as_user(demo_users["olga"]).get("/api/v1/catalog/locations/").status_code == 403
    assert not Location.objects.exists()


def test_refresh_needs_membership_and_reading_follows_the_catalog(make_repo, register, refresh, as_user, demo_users):
    _, location = register(f"file://{make_repo({'model.yaml': model_doc('m')})}")
    assert refresh(location, user="dana").status_code == 403
    assert refresh(location, user="eli").status_code == 202
    listed = as_user(demo_users["dana"], "read").get("/api/v1/catalog/locations/").json()["results"]
    assert [(row["id"], row["entity_count"]) for row in listed] == [(location.pk, 1)]


@pytest.fixture
def plain_http_server():
    class Plain(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body>Just a web page, not a git repository.</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Plain)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_non_git_host_fails_with_a_clear_message(plain_http_server, register, settings, monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    settings.CATALOG_ALLOW_PRIVATE_HOSTS = True
    settings.CATALOG_ALLOW_HTTP_LOCATIONS = True
    response, location = register(f"{plain_http_server}/team/repo.git", user="eli")
    assert response.status_code == 201
    location.refresh_from_db()
    job = Job.objects.get(pk=response.json()["job"])
    assert location.status == "failed" and job.status == JobStatus.FAILED
    [(file, line, message)] = messages_of(location)
    assert "not a git repository" in message or ("git clone failed" in message and "not found" in message)
    assert location.entity_count == 0


def test_the_url_is_checked_again_at_clone_time(make_repo, register, refresh, settings):
    _, location = register(f"file://{make_repo({'model.yaml': model_doc('m')})}")
    settings.CATALOG_ALLOW_FILE_LOCATIONS = False
    refresh(location)
    assert location.status == "failed" and "turned off" in location.errors[0]["message"]
    assert not Model.objects.get(name="m").orphaned


def test_refresh_all_locations_queues_one_job_each(make_repo, register):
    _, first = register(f"file://{make_repo({'model.yaml': model_doc('a')})}")
    _, second = register(f"file://{make_repo({'model.yaml': model_doc('b')})}")
    jobs = refresh_all_locations()
    assert len(jobs) == 2 and refresh_all_locations() == jobs


def test_schema_is_published_without_signing_in(api_client):
    response = api_client.get("/api/v1/catalog/locations/schema/")
    assert response.status_code == 200
    assert response.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


# --- Pages and the demo -----------------------------------------------------------------------


def test_pages_list_register_show_errors_and_refresh(client, demo_users, make_repo, django_capture_on_commit_callbacks):
    client.force_login(demo_users["dana"])
    page = client.get("/catalog/locations/").content.decode()
    assert "No locations yet" in page and 'value="fraud"' in page and 'value="forecasting"' not in page
    client.force_login(demo_users["admin"])
    repo = make_repo({"m/model.yaml": model_doc("paged", type="realtime")})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/catalog/locations/", {"url": f"file://{repo}", "team": "fraud"})
    location = Location.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/catalog/locations/{location.pk}/"
    detail = client.get(response["Location"]).content.decode()
    assert "m/model.yaml" in detail and "<td>6</td>" in detail and "$.spec.type" in detail
    assert 'data-testid="latest-job"' in detail and "csrfmiddlewaretoken" in detail
    with django_capture_on_commit_callbacks(execute=True):
        refreshed = client.post(f"/catalog/locations/{location.pk}/refresh/")
    assert refreshed.status_code == 302 and Job.objects.count() == 2
    listing = client.get("/catalog/locations/").content.decode()
    assert f'data-location="{location.pk}"' in listing and 'data-status="warning"' in listing
    bad = client.post("/catalog/locations/", {"url": "https://127.0.0.1/x.git", "team": "fraud"})
    assert bad.status_code == 400 and "loopback" in bad.content.decode()


def test_seed_descriptor_demo_is_idempotent(demo_users, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    call_command("seed_descriptor_demo", stdout=StringIO())
    out = StringIO()
    call_command("seed_descriptor_demo", stdout=out)
    assert "demo repository unchanged" in out.getvalue()
    location = Location.objects.get()
    assert (location.status, location.entity_count, location.team.slug) == ("ok", 4, "fraud")
    model = Model.objects.get(name="fraud-batch-scoring")
    assert (model.workload_type, model.project.name, model.team.slug) == ("batch", "fraud-platform", "fraud")
    repo = tmp_path / "var" / "descriptor-repos" / "demo"
    assert git(repo, "rev-list", "--count", "HEAD").strip() == "1"
