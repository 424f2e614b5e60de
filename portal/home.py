"""Sections that higher layers add to the home page, without portal importing them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class HomeSection:
    template: str
    context: dict


_PROVIDERS: list[Callable[[HttpRequest], HomeSection | None]] = []


def register_home_section(provider: Callable[[HttpRequest], HomeSection | None]) -> None:
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)


def home_sections(request: HttpRequest) -> list[HomeSection]:
    return [section for provider in _PROVIDERS if (section := provider(request)) is not None]
