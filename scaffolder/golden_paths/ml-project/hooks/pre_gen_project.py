"""Refuse a name that cannot be a repository, before any file is written."""

import re
import sys

SLUG = "{{ cookiecutter.project_slug }}"

if not re.match(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$", SLUG):
    print(f"ERROR: {SLUG!r} is not a valid project slug (lowercase letters, digits, - and _).", file=sys.stderr)
    sys.exit(1)
