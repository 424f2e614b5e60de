"""A template-local Jinja extension (cookiecutter's _extensions): only the isolated render may import it."""

from cookiecutter.utils import simple_filter


@simple_filter
def shout(value):
    return str(value).upper() + "!"
