"""``{% panels "slot" obj %}``: render what higher layers registered for a slot (see portal.home)."""

from django import template
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from portal.home import panels as registered_panels

register = template.Library()


@register.simple_tag(takes_context=True)
def panels(context, slot: str, obj):
    request = context["request"]
    return mark_safe(
        "".join(render_to_string(p.template, p.context, request=request) for p in registered_panels(slot, request, obj))
    )
