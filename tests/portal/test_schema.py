import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_openapi_schema_is_valid_and_complete(tmp_path):
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    schema = yaml.safe_load(out.read_text())
    paths = schema["paths"]
    for path in [
        "/api/v1/me/",
        "/api/v1/jobs/{id}/",
        "/api/v1/tokens/",
        "/api/v1/teams/{slug}/members/",
        "/api/v1/catalog/search/",
        "/api/v1/catalog/models/{name}/",
        "/api/v1/catalog/features/",
    ]:
        assert path in paths, path
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
