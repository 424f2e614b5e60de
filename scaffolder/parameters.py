"""A template's cookiecutter.json as form, JSON Schema and validator; live previews in a Jinja sandbox.

Nothing here runs template code: defaults are rendered with Jinja's ``SandboxedEnvironment`` and only
cookiecutter's own extensions (a template's local extensions run in the isolated render only). User
values are data: any value holding the template's Jinja start markers is refused, because cookiecutter
renders the values it is given as Jinja.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?$")
NAME_HELP = "Use 1–63 lowercase letters, digits, hyphens and underscores, starting and ending with a letter or digit."
NAME_CANDIDATES = ("project_slug", "repo_name", "slug", "project_name")
MAX_TEXT = 1000
MAX_DICT_JSON = 20_000
MAX_RENDERED = 10_000
MAX_CONFIG_BYTES = 256 * 1024
# Extensions a preview may load: cookiecutter's defaults and Jinja's own. Anything else is template code.
SAFE_EXTENSIONS = {
    "cookiecutter.extensions.JsonifyExtension",
    "cookiecutter.extensions.RandomStringExtension",
    "cookiecutter.extensions.SlugifyExtension",
    "cookiecutter.extensions.TimeExtension",
    "cookiecutter.extensions.UUIDExtension",
    "jinja2_time.TimeExtension",
    "jinja2.ext.do",
    "jinja2.ext.loopcontrols",
}
DEFAULT_EXTENSIONS = sorted(e for e in SAFE_EXTENSIONS if e.startswith("cookiecutter."))
_ENV_VARS = {
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
}
# Variables the portal fills in when a template declares them (not shown in the form).
PORTAL_VARIABLES = {
    "mlplatform_team": "the owner team's slug",
    "mlplatform_repo_url": "the new repository's clone URL",
    "mlplatform_url": "the portal's URL",
    "mlflow_tracking_uri": "the MLflow tracking server",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_TRUE, _FALSE = {"1", "true", "yes", "y", "on"}, {"0", "false", "no", "n", "off"}


class TemplateInvalid(ValueError):
    """cookiecutter.json cannot be used (not JSON, not an object, ...)."""


# --- Reading cookiecutter.json ------------------------------------------------------------


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise TemplateInvalid(f"cookiecutter.json names {', '.join(duplicates)} more than once.")
    return dict(pairs)


def load_config(text: str | bytes) -> dict[str, Any]:
    """Parse cookiecutter.json (order kept); raises TemplateInvalid with a readable reason."""
    if isinstance(text, bytes):
        if len(text) > MAX_CONFIG_BYTES:
            raise TemplateInvalid(f"cookiecutter.json is larger than {MAX_CONFIG_BYTES // 1024} KiB.")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TemplateInvalid("cookiecutter.json is not UTF-8 text.") from exc
    try:
        config = json.loads(text, object_pairs_hook=_pairs)
    except json.JSONDecodeError as exc:
        raise TemplateInvalid(
            f"cookiecutter.json is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from exc
    if not isinstance(config, dict) or not config:
        raise TemplateInvalid("cookiecutter.json must be a JSON object with at least one variable.")
    for key, value in config.items():
        if key in {"template", "templates"}:
            raise TemplateInvalid("Nested templates (a 'templates' key) are not supported; register each one.")
        if isinstance(value, list) and not key.startswith("_") and not value:
            raise TemplateInvalid(f"The choice variable {key} has no choices.")
    env_vars = config.get("_jinja2_env_vars", {})
    if not isinstance(env_vars, dict) or set(env_vars) - _ENV_VARS:
        raise TemplateInvalid("_jinja2_env_vars may only set Jinja's syntax options.")
    extensions = config.get("_extensions", [])
    if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
        raise TemplateInvalid("_extensions must be a list of dotted names.")
    return config


def detect_name_variable(config: dict[str, Any]) -> str:
    for name in NAME_CANDIDATES:
        if isinstance(config.get(name), str):
            return name
    raise TemplateInvalid(
        "cookiecutter.json needs a project_slug (or repo_name) variable: the portal names the repository "
        "and the catalog project after it."
    )


# --- Variables ---------------------------------------------------------------------------------


@dataclass
class Variable:
    name: str
    kind: str  # text, choice, boolean, dict, computed (``__``), private (``_``), portal (filled in by the portal)
    raw: Any
    label: str
    help: str = ""
    choices: list[Any] = field(default_factory=list)
    choice_labels: dict[str, str] = field(default_factory=dict)
    derived: bool = False  # a text or dict whose default holds Jinja expressions

    @property
    def editable(self) -> bool:
        return self.kind in {"text", "choice", "boolean", "dict"}


def jinja_markers(config: dict[str, Any]) -> tuple[str, ...]:
    """The strings that start Jinja syntax for this template (its ``_jinja2_env_vars`` may change them)."""
    env = config.get("_jinja2_env_vars") or {}
    markers = [
        env.get("variable_start_string", "{{"),
        env.get("block_start_string", "{%"),
        env.get("comment_start_string", "{#"),
    ]
    markers += [env[k] for k in ("line_statement_prefix", "line_comment_prefix") if env.get(k)]
    return tuple(dict.fromkeys(m for m in markers if m))


def _has_markers(value: str, markers: tuple[str, ...]) -> bool:
    return any(m in value for m in markers)


def variables(config: dict[str, Any]) -> list[Variable]:
    prompts = config.get("__prompts__") or {}
    markers = jinja_markers(config)
    found: list[Variable] = []
    for name, raw in config.items():
        if name == "__prompts__":
            continue
        prompt = prompts.get(name) if isinstance(prompts, dict) else None
        label = name.replace("_", " ").strip().capitalize()
        choice_labels: dict[str, str] = {}
        if isinstance(prompt, str):
            label = prompt
        elif isinstance(prompt, dict):
            label = str(prompt.get("__prompt__", label))
            choice_labels = {str(k): str(v) for k, v in prompt.items() if k != "__prompt__"}
        if name in PORTAL_VARIABLES:
            kind = "portal"
        elif name.startswith("__"):
            kind = "computed"
        elif name.startswith("_"):
            kind = "private"
        elif isinstance(raw, bool):
            kind = "boolean"
        elif isinstance(raw, list):
            kind = "choice"
        elif isinstance(raw, dict):
            kind = "dict"
        else:
            kind = "text"
        found.append(
            Variable(
                name=name,
                kind=kind,
                raw=raw,
                label=label,
                choices=list(raw) if kind == "choice" else [],
                choice_labels=choice_labels,
                derived=(kind == "text" and isinstance(raw, str) and _has_markers(raw, markers))
                or (kind == "dict" and _has_markers(json.dumps(raw), markers)),
            )
        )
    return found


# --- Previews in the Jinja sandbox -----------------------------------------------------------


def preview_environment(config: dict[str, Any]) -> SandboxedEnvironment:
    env_vars = {k: v for k, v in (config.get("_jinja2_env_vars") or {}).items() if k in _ENV_VARS}
    wanted = [e for e in config.get("_extensions", []) if e in SAFE_EXTENSIONS]
    extensions = list(dict.fromkeys(DEFAULT_EXTENSIONS + wanted))
    return SandboxedEnvironment(
        undefined=StrictUndefined, extensions=extensions, **({"keep_trailing_newline": True} | env_vars)
    )


class _Unavailable(Exception):
    pass


def _render(env: SandboxedEnvironment, raw: Any, context: dict[str, Any]) -> Any:
    """cookiecutter's render_variable, in the sandbox."""
    if raw is None or isinstance(raw, bool):
        return raw
    if isinstance(raw, dict):
        return {_render(env, k, context): _render(env, v, context) for k, v in raw.items()}
    if isinstance(raw, list):
        return [_render(env, v, context) for v in raw]
    if not isinstance(raw, str):
        raw = str(raw)
    try:
        out = env.from_string(raw).render(cookiecutter=context)
    except TemplateError as exc:
        raise _Unavailable(str(exc)) from exc
    if len(out) > MAX_RENDERED:
        raise _Unavailable(f"renders to more than {MAX_RENDERED} characters")
    return out


def apply_values(config: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """What cookiecutter's apply_overwrites_to_context does with extra_context (on a copy)."""
    context = copy.deepcopy({k: v for k, v in config.items() if k != "__prompts__"})
    for name, value in values.items():
        current = context.get(name)
        if isinstance(current, list):
            if value in current:
                current.remove(value)
                current.insert(0, value)
        elif isinstance(current, dict) and isinstance(value, dict):
            context[name] = _merge(current, value)
        else:
            context[name] = value
    return context


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass
class Preview:
    context: dict[str, Any]
    unavailable: dict[str, str]  # variable → why it cannot be previewed (computed at render time)


def preview(config: dict[str, Any], values: dict[str, Any] | None = None) -> Preview:
    """The context cookiecutter would build with ``values``, rendered in the sandbox (prompt_for_config's order)."""
    raw_context = apply_values(config, values or {})
    env = preview_environment(config)
    context: dict[str, Any] = {}
    unavailable: dict[str, str] = {}

    def render(name: str, raw: Any) -> None:
        try:
            context[name] = _render(env, raw, context)
        except _Unavailable as exc:
            unavailable[name] = str(exc)

    for name, raw in raw_context.items():
        if name.startswith("_") and not name.startswith("__"):
            context[name] = raw
        elif name.startswith("__"):
            render(name, raw)
        elif isinstance(raw, list):
            try:
                options = [_render(env, option, context) for option in raw]
                context[name] = options[0]
            except _Unavailable as exc:
                unavailable[name] = str(exc)
        elif isinstance(raw, bool):
            context[name] = raw
        elif not isinstance(raw, dict):
            render(name, raw)
    for name, raw in raw_context.items():
        if isinstance(raw, dict) and not (name.startswith("_") and not name.startswith("__")):
            render(name, raw)
    return Preview(context=context, unavailable=unavailable)


def choice_options(config: dict[str, Any], var: Variable, context: dict[str, Any]) -> list[tuple[str, str]]:
    """(raw value, label) of a choice variable's options, labels rendered in the sandbox."""
    env = preview_environment(config)
    options = []
    for raw in var.choices:
        try:
            shown = _render(env, raw, context)
        except _Unavailable:
            shown = raw
        options.append((str(raw), var.choice_labels.get(str(raw), str(shown))))
    return options


# --- JSON Schema --------------------------------------------------------------------------


def _ecma_escape(text: str) -> str:
    """Escape for an ECMA-262 pattern (re.escape would also escape '#', which unicode-mode ECMA refuses)."""
    return "".join("\\" + c if c in "\\^$.|?*+()[]{}/" else c for c in text)


def parameters_schema(config: dict[str, Any], name_variable: str) -> dict[str, Any]:
    """The parameters as JSON Schema (Draft 2020-12), for CI and other tools."""
    defaults = preview(config)
    markers = jinja_markers(config)
    no_jinja = {"pattern": "|".join(_ecma_escape(m) for m in markers)}
    properties: dict[str, Any] = {}
    for var in variables(config):
        if var.kind == "private":
            continue
        prop: dict[str, Any] = {"title": var.label}
        default = defaults.context.get(var.name)
        if var.kind == "text":
            prop |= {"type": "string", "maxLength": MAX_TEXT, "not": no_jinja}
            if var.derived:
                prop["x-cookiecutter-default"] = var.raw
                prop["description"] = "Computed from the other values unless given."
        elif var.kind == "choice":
            prop |= {"type": "string", "enum": [str(c) for c in var.choices]}
        elif var.kind == "boolean":
            prop["type"] = "boolean"
        elif var.kind == "dict":
            prop["type"] = "object"
        elif var.kind == "portal":
            prop |= {"readOnly": True, "description": f"Set by the portal: {PORTAL_VARIABLES[var.name]}."}
        else:  # computed (``__``): rendered by the template, not editable
            prop |= {"readOnly": True, "x-cookiecutter-default": var.raw}
        if var.name == name_variable:
            prop["pattern"] = NAME_RE.pattern
            prop["description"] = (
                prop.get("description", "") + " Names the repository and the catalog project."
            ).strip()
        if var.name in defaults.unavailable:
            prop["x-default-unavailable"] = "computed when the template is rendered"
        elif default is not None:
            prop["default"] = default
        properties[var.name] = prop
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


# --- Validation ---------------------------------------------------------------------------


@dataclass
class Cleaned:
    values: dict[str, Any]  # what is given to cookiecutter as extra_context
    context: dict[str, Any]  # the previewed context with those values
    name: str
    errors: dict[str, list[str]]


def _jinja_error(markers: tuple[str, ...], value: str) -> str:
    found = next(m for m in markers if m in value)
    return (
        f"Values are data, not templates: remove “{found}”. The template's own expressions are rendered for you; "
        "a value may not add new ones."
    )


def _check_data(value: Any, markers: tuple[str, ...], depth: int = 0) -> str | None:
    if depth > 10:
        return "is nested too deeply (at most 10 levels)."
    if isinstance(value, str):
        if _has_markers(value, markers):
            return _jinja_error(markers, value)
        if _CONTROL.search(value):
            return "may not hold control characters."
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            problem = _check_data(str(key), markers, depth + 1) or _check_data(item, markers, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        return next((p for item in value if (p := _check_data(item, markers, depth + 1))), None)
    if value is None or isinstance(value, bool | int | float):
        return None
    return f"a {type(value).__name__} is not a JSON value."


def clean_parameters(
    config: dict[str, Any], given: dict[str, Any], name_variable: str, portal: dict[str, Any] | None = None
) -> Cleaned:
    """Validate user values for every field (the form and the API both call this).

    ``portal`` holds the values of PORTAL_VARIABLES; those the template declares join the cleaned values."""
    markers = jinja_markers(config)
    by_name = {v.name: v for v in variables(config)}
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}

    def fail(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if not isinstance(given, dict):
        return Cleaned({}, {}, "", {"parameters": ["Give the parameters as a JSON object."]})
    for name, value in given.items():
        var = by_name.get(name)
        if var is None:
            fail(name, "is not a variable of this template.")
            continue
        if var.kind == "portal":
            fail(name, f"is set by the portal ({PORTAL_VARIABLES[name]}).")
            continue
        if not var.editable:
            fail(name, "is set by the template and cannot be changed.")
            continue
        if var.kind == "text":
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str):
                fail(name, "must be text.")
                continue
            value = value.strip()
            if len(value) > MAX_TEXT:
                fail(name, f"may be at most {MAX_TEXT} characters long.")
                continue
        elif var.kind == "choice":
            options = choice_options(config, var, {})
            by_label = {label: raw for raw, label in options}
            match = next((c for c in var.choices if str(c) == str(value)), None)
            if match is None and str(value) in by_label:
                match = next(c for c in var.choices if str(c) == by_label[str(value)])
            if match is None:
                fail(name, f"must be one of: {', '.join(str(c) for c in var.choices)}.")
                continue
            value = match
        elif var.kind == "boolean":
            if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                value = value.strip().lower() in _TRUE
            if not isinstance(value, bool):
                fail(name, "must be true or false.")
                continue
        elif var.kind == "dict":
            if not isinstance(value, dict):
                fail(name, "must be a JSON object.")
                continue
            if len(json.dumps(value)) > MAX_DICT_JSON:
                fail(name, f"may be at most {MAX_DICT_JSON // 1000} kB of JSON.")
                continue
        problem = _check_data(value, markers)
        if problem:
            fail(name, problem)
            continue
        values[name] = value
    for name, value in (portal or {}).items():
        if by_name.get(name) is not None and by_name[name].kind == "portal":
            values[name] = value
    previewed = preview(config, values)
    name = previewed.context.get(name_variable)
    if name_variable not in errors:
        if name_variable in previewed.unavailable:
            fail(name_variable, f"cannot be computed from the other values ({previewed.unavailable[name_variable]}).")
        elif not isinstance(name, str) or not name.strip():
            fail(name_variable, "is required: it names the repository and the catalog project.")
        elif not NAME_RE.match(name):
            fail(name_variable, f"“{name}” cannot name a repository. {NAME_HELP}")
    for var_name, why in previewed.unavailable.items():
        if var_name not in errors and var_name in values:
            fail(var_name, f"cannot be used: {why}.")
    return Cleaned(values=values, context=previewed.context, name=name if isinstance(name, str) else "", errors=errors)
