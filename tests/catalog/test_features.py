import hashlib
import json

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from catalog.models import FeatureVersion
from catalog.services.features import feature_pin, feature_register, feature_served_version, feature_version_hash
from portal.models import AuditEvent, Team

pytestmark = pytest.mark.django_db

V1 = {
    "computation_logic": (
        "AVG(order_count) OVER (PARTITION BY customer_id ORDER BY date ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)"
    ),
    "null_handling": "forward_fill",
    "data_type": "float32",
    "source_table": "orders_daily",
}
V2 = V1 | {
    "computation_logic": (
        "AVG(COALESCE(order_count, 0)) OVER (PARTITION BY customer_id ORDER BY date "
        "ROWS BETWEEN 6 PRECEDING AND CURRENT ROW)"
    ),
    "null_handling": "zero_fill",
}


def test_version_is_the_seed_rule_sha256_of_sorted_default_json():
    expected = hashlib.sha256(json.dumps(V1, sort_keys=True).encode()).hexdigest()[:12]
    assert feature_version_hash(V1) == expected and len(expected) == 12
    assert feature_version_hash(V2) != expected


def test_identical_definition_returns_the_existing_version(demo_users):
    team = Team.objects.get(slug="forecasting")
    first = feature_register(actor=demo_users["eli"], name="rolling_7d_avg_orders", team=team, **V1)
    again = feature_register(actor=demo_users["eli"], name="rolling_7d_avg_orders", **V1)
    assert first.created and not again.created and first.version.pk == again.version.pk
    assert FeatureVersion.objects.count() == 1


def test_changed_definition_creates_a_new_version_recording_what_changed(demo_users):
    team = Team.objects.get(slug="forecasting")
    v1 = feature_register(actor=demo_users["eli"], name="rolling_7d_avg_orders", team=team, **V1).version
    v2 = feature_register(actor=demo_users["eli"], name="rolling_7d_avg_orders", **V2).version
    assert v2.version != v1.version and v2.previous == v1
    assert {c["label"] for c in v2.changes} == {"null handling", "logic"}
    null_change = next(c for c in v2.changes if c["field"] == "null_handling")
    assert (null_change["from"], null_change["to"]) == ("forward_fill", "zero_fill")
    v1.refresh_from_db()
    assert v1.null_handling == "forward_fill"  # nothing edits a version in place
    assert AuditEvent.objects.filter(action="feature_version.create").count() == 2


def test_environment_serves_latest_unless_pinned(demo_users):
    team = Team.objects.get(slug="forecasting")
    v1 = feature_register(actor=demo_users["eli"], name="f", team=team, **V1).version
    v2 = feature_register(actor=demo_users["eli"], name="f", **V2).version
    feature = v1.feature
    assert feature_served_version(feature, "production") == v2
    feature_pin(actor=demo_users["eli"], feature=feature, environment="production", version=v1.version)
    assert feature_served_version(feature, "production") == v1
    assert feature_served_version(feature, "staging") == v2
    feature_pin(actor=demo_users["eli"], feature=feature, environment="production", version=None)
    assert feature_served_version(feature, "production") == v2


def test_missing_field_is_a_clear_error_and_writes_nothing(demo_users):
    team = Team.objects.get(slug="forecasting")
    with pytest.raises(ValidationError) as err:
        feature_register(actor=demo_users["eli"], name="f", team=team, **(V1 | {"null_handling": ""}))
    assert "null_handling" in err.value.message_dict
    assert not FeatureVersion.objects.exists()


def test_other_teams_cannot_register_versions_of_a_feature(demo_users):
    team = Team.objects.get(slug="forecasting")
    feature_register(actor=demo_users["eli"], name="f", team=team, **V1)
    with pytest.raises(PermissionDenied):
        feature_register(actor=demo_users["dana"], name="f", **V2)
    assert FeatureVersion.objects.count() == 1
