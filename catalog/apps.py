from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"

    def ready(self) -> None:
        import catalog.location_jobs  # noqa: F401  (registers catalog.refresh_location)
        from catalog import job_kinds  # noqa: F401  (registers the catalog's job kinds)
        from catalog.home import catalog_home_section
        from catalog.services.search_index import connect_signals
        from portal.home import register_home_section

        register_home_section(catalog_home_section)
        connect_signals()
