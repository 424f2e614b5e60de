"""Report what was created (the schedule lives in config/schedule.yaml)."""

print("Created {{ cookiecutter.project_slug }}: scores with models:/{{ cookiecutter.model_name }}@{{ cookiecutter.model_alias }}")
