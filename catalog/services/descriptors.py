"""Descriptor files (mlplatform.yaml, model.yaml): safe YAML loading, JSON Schema validation, entity fields.

Pure functions, no database: :mod:`catalog.services.locations` reads the files from a clone and applies
what this module returns. Every problem is a :class:`DescriptorError` naming the file and the line.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from jsonschema import Draft202012Validator
from yaml.nodes import MappingNode, Node, SequenceNode

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "descriptor.schema.json"
DESCRIPTOR_FILENAMES = frozenset({"mlplatform.yaml", "model.yaml"})
API_VERSION = "mlplatform/v1"
# Apply order: projects first, so models can name a project declared in the same repository.
KIND_ORDER = {"Project": 0, "Dataset": 1, "Feature": 2, "Model": 3}
RISK_TIERS = {"low": 1, "medium": 2, "high": 3}
MAX_ERRORS_PER_DOCUMENT = 10
MAX_MESSAGE = 400


def max_file_bytes() -> int:
    return int(getattr(settings, "CATALOG_DESCRIPTOR_MAX_BYTES", 256 * 1024))


def max_aliases() -> int:
    return int(getattr(settings, "CATALOG_DESCRIPTOR_MAX_ALIASES", 100))


def max_nodes() -> int:
    return int(getattr(settings, "CATALOG_DESCRIPTOR_MAX_NODES", 20000))


@dataclass(frozen=True)
class DescriptorError:
    file: str
    line: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message[:MAX_MESSAGE]}


@dataclass
class Descriptor:
    """One valid document: its kind (Model, ...), name, data and where it was written."""

    file: str
    line: int
    kind: str
    name: str
    data: dict[str, Any]

    @property
    def entity_kind(self) -> str:
        return self.kind.lower()

    @property
    def spec(self) -> dict[str, Any]:
        return self.data.get("spec") or {}

    @property
    def metadata(self) -> dict[str, Any]:
        return self.data["metadata"]

    @property
    def owner(self) -> str | None:
        return self.spec.get("owner") or self.metadata.get("owner")

    def where(self) -> str:
        return f"{self.file} line {self.line}"


@cache
def descriptor_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@cache
def _validator() -> Draft202012Validator:
    schema = descriptor_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


# --- Safe YAML ------------------------------------------------------------------------


class DescriptorRejected(yaml.YAMLError):
    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.message, self.line = message, line


class _SafeCountingLoader(yaml.SafeLoader):
    """SafeLoader (no python/* tags) that refuses documents with too many aliases or anchors."""

    def __init__(self, stream: str, limit: int):
        super().__init__(stream)
        self.limit, self.aliases = limit, 0

    def compose_document(self) -> Node:
        self.aliases = 0
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            self.aliases += 1
            if self.aliases > self.limit:
                raise DescriptorRejected(
                    f"more than {self.limit} YAML aliases/anchors in one document (alias bomb?); refused",
                    event.start_mark.line + 1,
                )
        return super().compose_node(parent, index)


def _expanded_size(node: Node, limit: int) -> int:
    """Nodes the document would have with every alias expanded; refuses recursion and alias bombs."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def walk(n: Node, depth: int) -> int:
        key = id(n)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise DescriptorRejected("a YAML alias refers to its own ancestor (recursive document); refused", _line(n))
        if depth > 64:
            raise DescriptorRejected("the document is nested more than 64 levels deep; refused", _line(n))
        active.add(key)
        total = 1
        if isinstance(n, SequenceNode):
            total += sum(walk(child, depth + 1) for child in n.value)
        elif isinstance(n, MappingNode):
            total += sum(walk(k, depth + 1) + walk(v, depth + 1) for k, v in n.value)
        active.discard(key)
        sizes[key] = total
        if total > limit:
            raise DescriptorRejected(
                f"the document expands to more than {limit} YAML nodes (alias bomb?); refused", _line(n)
            )
        return total

    return walk(node, 0)


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def load_documents(file: str, text: str) -> tuple[list[tuple[Node, Any]], list[DescriptorError]]:
    """(node, data) of each document of a YAML stream; a broken document ends the stream with an error."""
    documents: list[tuple[Node, Any]] = []
    loader = _SafeCountingLoader(text, max_aliases())
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            _expanded_size(node, max_nodes())
            documents.append((node, loader.construct_document(node)))
    except DescriptorRejected as exc:
        return documents, [DescriptorError(file, exc.line, exc.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return documents, [DescriptorError(file, mark.line + 1 if mark else None, f"invalid YAML: {problem}")]
    except RecursionError:
        return documents, [DescriptorError(file, None, "the YAML is nested too deeply; refused")]
    except yaml.YAMLError as exc:
        return documents, [DescriptorError(file, None, f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
    return documents, []


# --- Validation -------------------------------------------------------------------------


def json_path(path: Any) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def node_line(node: Node, path: Any) -> int:
    """Line of the deepest YAML node along ``path``: a mapping entry's key line, else the document's line."""
    current, line = node, _line(node)
    for part in path:
        if isinstance(current, MappingNode):
            entry = next(((k, v) for k, v in current.value if getattr(k, "value", None) == part), None)
            if entry is None:
                break
            current, line = entry[1], _line(entry[0])
        elif isinstance(current, SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
            line = _line(current)
        else:
            break
    return line


def _not_json(data: Any, path: tuple = ()) -> tuple[tuple, str] | None:
    """The first value JSON cannot hold (dates, binary, sets, NaN, non-string keys), with its path."""
    if isinstance(data, dict):
        for key, value in data.items():
            if not isinstance(key, str):
                return path, f"mapping keys must be strings; {key!r} is a {type(key).__name__}"
            found = _not_json(value, (*path, key))
            if found:
                return found
    elif isinstance(data, list):
        for i, value in enumerate(data):
            found = _not_json(value, (*path, i))
            if found:
                return found
    elif isinstance(data, float) and not math.isfinite(data):
        return path, f"{data} is not a finite number"
    elif isinstance(data, datetime | date):
        return path, f"{data.isoformat()} is a date; quote it to make it a string"
    elif not isinstance(data, str | int | float | bool | type(None)):
        return path, f"a {type(data).__name__} value is not allowed; use strings, numbers, lists and mappings"
    return None


def validate_document(file: str, node: Node, data: Any) -> tuple[Descriptor | None, list[DescriptorError]]:
    line = _line(node)
    if not isinstance(data, dict):
        return None, [
            DescriptorError(file, line, f"a descriptor document must be a mapping, not {type(data).__name__}")
        ]
    bad = _not_json(data)
    if bad:
        path, message = bad
        return None, [DescriptorError(file, node_line(node, path), f"{json_path(path)}: {message}")]
    errors = sorted(_validator().iter_errors(data), key=lambda e: (len(e.absolute_path), list(map(str, e.path))))
    if errors:
        found = [
            DescriptorError(file, node_line(node, e.absolute_path), f"{json_path(e.absolute_path)}: {e.message}")
            for e in errors[:MAX_ERRORS_PER_DOCUMENT]
        ]
        return None, found
    descriptor = Descriptor(file, line, data["kind"], data["metadata"]["name"], data)
    problems = _semantic_problems(descriptor)
    if problems:
        return None, [DescriptorError(file, node_line(node, path), f"{json_path(path)}: {m}") for path, m in problems]
    return descriptor, []


def _semantic_problems(d: Descriptor) -> list[tuple[tuple, str]]:
    problems: list[tuple[tuple, str]] = []
    meta_owner, spec_owner = d.metadata.get("owner"), d.spec.get("owner")
    if meta_owner and spec_owner and meta_owner != spec_owner:
        problems.append((("spec", "owner"), f"differs from metadata.owner ({meta_owner}); give the owner once"))
    scaling = d.spec.get("scaling") or {}
    low, high = scaling.get("minReplicas"), scaling.get("maxReplicas")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        problems.append((("spec", "scaling"), f"minReplicas ({low}) is greater than maxReplicas ({high})"))
    return problems


def parse_descriptor_file(file: str, content: bytes) -> tuple[list[Descriptor], list[DescriptorError]]:
    """Every valid document of one file, and an error for each invalid one (one bad document stops no other)."""
    if len(content) > max_file_bytes():
        return [], [DescriptorError(file, None, f"file is larger than {max_file_bytes() // 1024} KiB; skipped")]
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [DescriptorError(file, None, f"file is not UTF-8 text ({exc.reason} at byte {exc.start})")]
    documents, errors = load_documents(file, text)
    descriptors: list[Descriptor] = []
    for node, data in documents:
        if data is None:  # an empty document, e.g. a trailing ---
            continue
        descriptor, problems = validate_document(file, node, data)
        errors.extend(problems)
        if descriptor:
            descriptors.append(descriptor)
    return descriptors, errors


# --- From a document to catalog fields --------------------------------------------------


def entity_fields(d: Descriptor, *, creating: bool) -> dict[str, Any]:
    """Fields for ``entity_save`` (project, model, dataset). The descriptor owns description, tags and its spec
    fields; risk tier, lifecycle and project are set when given (defaults only for a new entity), so a risk
    tier raised in the portal is not lowered by a descriptor that does not mention it."""
    spec = d.spec
    fields: dict[str, Any] = {
        "description": d.metadata.get("description", ""),
        "tags": list(d.metadata.get("tags", [])),
    }
    if "lifecycle" in spec:
        fields["lifecycle"] = spec["lifecycle"]
    if d.kind == "Project":
        fields["repo_url"] = spec.get("repoUrl", "")
    elif d.kind == "Dataset":
        fields["uri"] = spec.get("uri", "")
    elif d.kind == "Model":
        fields |= {
            "workload_type": spec["type"],
            "task": spec.get("task", ""),
            "framework": spec.get("framework", ""),
            "spec": {key: spec[key] for key in ("resources", "scaling") if key in spec},
        }
        if "riskTier" in spec or creating:
            fields["risk_tier"] = RISK_TIERS[spec.get("riskTier", "medium")]
    return fields


def feature_definition(d: Descriptor) -> dict[str, str]:
    spec = d.spec
    return {
        "computation_logic": spec["computationLogic"],
        "null_handling": spec["nullHandling"],
        "data_type": spec["dataType"],
        "source_table": spec["sourceTable"],
    }
