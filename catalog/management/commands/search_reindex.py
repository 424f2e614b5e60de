from django.core.management.base import BaseCommand

from catalog.services.search_index import search_index_rebuild


class Command(BaseCommand):
    help = "Rebuild the catalog's search index from the entities (after bulk loads or restores)."

    def handle(self, *args, **options):
        self.stdout.write(f"Indexed {search_index_rebuild()} entities.")
