"""The platform team's starting policy; they edit it afterwards (admin, API), it is data, not code."""

from django.db import migrations

LOW, MEDIUM, HIGH = 1, 2, 3
APPROVALS = [
    (LOW, "staging", 0),
    (LOW, "production", 1),
    (MEDIUM, "staging", 0),
    (MEDIUM, "production", 1),
    (HIGH, "staging", 1),
    (HIGH, "production", 2),
]
THRESHOLDS = [
    ("classification", "accuracy", ">=", 0.85),
    ("classification", "auc", ">=", 0.8),
    ("regression", "rmse", "<=", 10.0),
    ("forecasting", "rmse", "<=", 10.0),
    ("ranking", "ndcg", ">=", 0.6),
]


def add(apps, schema_editor):
    policy = apps.get_model("governance", "ApprovalPolicy")
    threshold = apps.get_model("governance", "EvaluationThreshold")
    for tier, env, required in APPROVALS:
        policy.objects.get_or_create(risk_tier=tier, environment=env, defaults={"required_approvals": required})
    for task, metric, direction, value in THRESHOLDS:
        threshold.objects.get_or_create(
            task=task, metric=metric, team=None, defaults={"direction": direction, "value": value}
        )


class Migration(migrations.Migration):
    dependencies = [("governance", "0001_initial")]
    operations = [migrations.RunPython(add, migrations.RunPython.noop)]
