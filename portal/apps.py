from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from portal import job_kinds  # noqa: F401  (registers the portal's job kinds)
        from portal.api import schema  # noqa: F401  (OpenAPI description of token auth)
