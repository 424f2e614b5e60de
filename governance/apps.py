from django.apps import AppConfig


class GovernanceConfig(AppConfig):
    name = "governance"

    def ready(self) -> None:
        from catalog.signals import mlflow_synced
        from governance import services  # noqa: F401  (registers the gates and apply job kinds)
        from governance.home import governance_home_section, model_panel, model_version_panel
        from portal.home import register_home_section, register_panel

        register_home_section(governance_home_section)
        register_panel("model_version", model_version_panel)
        register_panel("model", model_panel)
        mlflow_synced.connect(_check_drift, dispatch_uid="governance-drift-after-sync")


def _check_drift(sender, **kwargs) -> None:
    from governance.policy import drift_check

    drift_check()
