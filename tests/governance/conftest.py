import pytest

from catalog.models import Model
from catalog.services.features import feature_register
from portal.models import RiskTier
from tests.catalog.factories import complete_version, make_model
from tests.catalog.test_features import V1, V2

AMOUNT = {
    "computation_logic": "SUM(amount) 7d",
    "null_handling": "zero_fill",
    "data_type": "float32",
    "source_table": "txn",
}


@pytest.fixture(autouse=True)
def manifest_repo(settings, tmp_path):
    settings.GOVERNANCE_MANIFEST_REPO = str(tmp_path / "environments.git")
    settings.JOB_RETRY_SECONDS = 0
    return settings.GOVERNANCE_MANIFEST_REPO


@pytest.fixture
def features(demo_users):
    """rolling_7d_avg_orders registered as v1 (forward fill) then v2 (zero fill): v2 is served."""
    first = feature_register(actor=None, name="rolling_7d_avg_orders", team=demo_users_team("forecasting"), **V1)
    second = feature_register(actor=None, name="rolling_7d_avg_orders", **V2)
    return first.version.version, second.version.version


def demo_users_team(slug):
    from portal.models import Team

    return Team.objects.get(slug=slug)


@pytest.fixture
def scorer(demo_users) -> Model:
    """A fraud model whose v1 has complete lineage and good metrics."""
    feature = feature_register(actor=None, name="txn_amount_7d", team=demo_users_team("fraud"), **AMOUNT)
    model = make_model("card-scorer", team="fraud", task="classification", risk_tier=RiskTier.MEDIUM)
    complete_version(model, 1, {"txn_amount_7d": feature.version.version}, metrics={"accuracy": 0.95, "auc": 0.91})
    return model
