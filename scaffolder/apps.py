from django.apps import AppConfig


class ScaffolderConfig(AppConfig):
    name = "scaffolder"
    verbose_name = "Scaffolder"

    def ready(self) -> None:
        from portal.home import register_home_section, register_panel
        from scaffolder import job_kinds  # noqa: F401  (registers scaffolder.run)
        from scaffolder.home import project_panel, scaffolder_home_section

        register_home_section(scaffolder_home_section)
        register_panel("project", project_panel)
