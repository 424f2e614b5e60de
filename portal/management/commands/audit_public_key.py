from cryptography.hazmat.primitives import serialization
from django.core.management.base import BaseCommand

from portal.services.audit import _load_private_key


class Command(BaseCommand):
    help = "Print the audit signing key's public half (PEM): publish it so auditors can pin it."

    def handle(self, *args, **options):
        public = _load_private_key().public_key()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.stdout.write(pem.decode().strip())
