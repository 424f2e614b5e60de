"""Sections that higher layers add to pages of lower ones (the home page, catalog pages), without importing them.

``register_home_section`` adds to the home page; ``register_panel(slot, provider)`` adds to a named slot that
a page renders with ``{% panels "slot" obj %}`` (portal_tags), e.g. governance's promotion panel on a model version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class HomeSection:
    template: str
    context: dict
    order: int = 100  # lower comes first: e.g. a risk approver's inbox above the catalog


_PROVIDERS: list[Callable[[HttpRequest], HomeSection | None]] = []


def register_home_section(provider: Callable[[HttpRequest], HomeSection | None]) -> None:
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def home_sections(request: HttpRequest) -> list[HomeSection]:
    sections = [section for provider in _PROVIDERS if (section := provider(request)) is not None]
    return sorted(sections, key=lambda s: s.order)


_PANELS: dict[str, list[Callable[..., HomeSection | None]]] = {}


def register_panel(slot: str, provider: Callable[..., HomeSection | None]) -> None:
    providers = _PANELS.setdefault(slot, [])
    if provider not in providers:
        providers.append(provider)


def panels(slot: str, request: HttpRequest, obj) -> list[HomeSection]:
    return [section for provider in _PANELS.get(slot, []) if (section := provider(request, obj)) is not None]
