"""Drop what the answers did not ask for."""

import shutil

if not {{ cookiecutter.include_notebooks }}:
    shutil.rmtree("notebooks", ignore_errors=True)

print("Created {{ cookiecutter.project_slug }}: run `make setup`, then `make train`.")
