"""Runbook documents: schema validation with file/line errors, content-hash versions,
parameter resolution that validates every value before it is used."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import yaml
from jsonschema import Draft202012Validator

from baton.act import plugins
from baton.act.argv import find_interpreter
from baton.act.confine import CONFINED, FORBIDDEN, Escape, Scope, confine
from baton.kernel.enums import TIER_LABELS

SCHEMA_PATH = Path(__file__).with_name("runbook.schema.json")
TIERS = TIER_LABELS
_TEMPLATE = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*|secret\.[A-Za-z0-9_]{1,64})\s*\}\}")
_SECRET = re.compile(r"\{\{\s*secret\.([A-Za-z0-9_]{1,64})\s*\}\}")
MAX_PARAM_LEN = 256


class RunbookError(ValueError):
    """A runbook that does not validate; the message names file, line and field.

    The first problem is the error itself; `others` holds the rest found in the same file.
    """

    def __init__(
        self,
        path: str,
        line: int | None,
        field_path: str,
        message: str,
        others: list[RunbookError] | None = None,
    ) -> None:
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {field_path or 'document'}: {message}")
        self.path, self.line, self.field_path, self.message = path, line, field_path, message
        self.others = others or []

    @property
    def all(self) -> list[RunbookError]:
        return [self, *self.others]


class ParamError(ValueError):
    """A parameter value that fails its declared type or pattern."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"param {param!r}: {message}")
        self.param = param


@cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@dataclass(frozen=True)
class Runbook:
    id: str
    version: str
    doc: dict[str, Any]
    path: str = ""
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return self.doc["title"]

    @property
    def owner(self) -> str | None:
        return self.doc.get("owner")

    @property
    def risk(self) -> str:
        return self.doc["risk"]

    @property
    def reversible(self) -> bool:
        return bool(self.doc["reversible"])

    @property
    def manual_minutes(self) -> float | None:
        """The declared time a person needs to do this by hand (time-saved KPI)."""
        value = self.doc.get("manual_minutes")
        return None if value is None else float(value)

    def ceiling(self, env: str) -> str:
        autonomy = self.doc["autonomy"]
        return autonomy.get(env, autonomy["default"])

    def gates(self) -> tuple[float, float]:
        """(recommend_below, observe_below) confidence thresholds."""
        conf = self.doc.get("confidence", {})
        return float(conf.get("recommend_below", 0.6)), float(conf.get("observe_below", 0.3))


def content_version(doc: dict[str, Any]) -> str:
    """Version = hash of the canonical document, so formatting changes do not count."""
    return hashlib.sha256(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _line_of(node: yaml.Node | None, path: list[Any]) -> int | None:
    """Line (1-based) of the YAML node at `path`, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def _templated(text: str) -> bool:
    return bool(_TEMPLATE.search(text))


def _with_consts(argv: list[Any], params: dict[str, Any]) -> list[str]:
    """The argv with `const:` params filled in: they are fixed text, not untrusted input."""
    consts = {
        name: spec["source"].split(":", 1)[1]
        for name, spec in params.items()
        if isinstance(spec, dict) and str(spec.get("source", "")).startswith("const:")
    }

    def fill(match: re.Match[str]) -> str:
        return consts.get(match.group(1), match.group(0))

    return [_TEMPLATE.sub(fill, str(a)) for a in argv]


def _interpreter_errors(
    doc: dict[str, Any], allow_interpreter: Collection[str]
) -> list[tuple[list[Any], str]]:
    """No step runs a shell or interpreter code (seen through wrappers), except one a
    person reviewed, the policy allows and no param reaches."""
    problems: list[tuple[list[Any], str]] = []
    for section in ("steps", "verify", "rollback"):
        for i, item in enumerate(doc.get(section, [])):
            argv = (item.get("with") or {}).get("argv")
            exception = item.get("interpreter")
            found = None
            if isinstance(argv, list) and argv:
                argv = _with_consts(argv, doc.get("params", {}))
                found = find_interpreter(argv, _templated)
            where = [section, i, "with", "argv"]
            if found is None:
                if exception is not None:
                    problems.append(
                        ([section, i, "interpreter"], "runs no shell or interpreter: remove it")
                    )
                continue
            kind = "shell" if found.shell else "interpreter"
            if exception is None:
                problems.append(
                    (
                        [*where, found.index],
                        f"would run {kind} code ({found.what}), where a param can become "
                        "code; call the program with arguments instead (or declare a reviewed "
                        "`interpreter` exception that policy.yaml allows)",
                    )
                )
                continue
            reached = [k for k in (found.index, *found.code) if k < len(argv)]
            templated = next((k for k in reached if _templated(argv[k])), None)
            if templated is not None:
                problems.append(
                    (
                        [*where, templated],
                        f"a param reaches the {kind} code of {found.what}: no exception "
                        "covers that; pass values as arguments to a reviewed script",
                    )
                )
            elif doc.get("id") not in allow_interpreter:
                problems.append(
                    (
                        [section, i, "interpreter"],
                        f"runs {found.what} under a reviewed exception, but policy.yaml does "
                        f"not list {doc.get('id')!r} under allow_interpreter",
                    )
                )
    return problems


def _semantic_errors(
    doc: dict[str, Any], allow_interpreter: Collection[str] = ()
) -> list[tuple[list[Any], str]]:
    """Checks a JSON Schema cannot express: templates refer to declared params, no shell
    or interpreter code, plugins that exist, regexes that compile."""
    problems: list[tuple[list[Any], str]] = []
    declared = set(doc.get("params", {}))
    for section in ("steps", "verify", "rollback"):
        for i, item in enumerate(doc.get(section, [])):
            text = orjson.dumps(item.get("with", {})).decode()
            for name in _TEMPLATE.findall(text):
                if name not in declared and not name.startswith("secret."):
                    problems.append(
                        ([section, i, "with"], f"uses {{{{ {name} }}}} but no such param")
                    )
    problems += _interpreter_errors(doc, allow_interpreter)
    for section in ("steps", "verify", "rollback"):
        for i, item in enumerate(doc.get(section, [])):
            if item.get("action") == "python" or item.get("check") == "python_check":
                why = plugins.problems(item["with"])
                if why:
                    problems.append(([section, i, "with", "plugin"], why))
    for name, spec in doc.get("params", {}).items():
        for root in spec.get("roots", []):
            if root == "/" or any(root == f or root.startswith(f + "/") for f in FORBIDDEN):
                problems.append((["params", name, "roots"], f"{root} cannot be a root"))
        if "pattern" in spec:
            try:
                re.compile(spec["pattern"])
            except re.error as exc:
                problems.append((["params", name, "pattern"], f"not a valid regex: {exc}"))
    return problems


def parse(text: str, path: str = "<string>", allow_interpreter: Collection[str] = ()) -> Runbook:
    """Validate one runbook document; raise RunbookError naming file, line and field.

    `allow_interpreter` is the policy's list of runbook ids whose reviewed interpreter
    exceptions may stand; everywhere else a shell or interpreter code is refused."""
    try:
        node = yaml.compose(text)
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RunbookError(
            path, mark.line + 1 if mark else None, "", f"not valid YAML: {exc}"
        ) from None
    if not isinstance(doc, dict):
        raise RunbookError(path, 1, "", "a runbook must be a YAML mapping")
    found = [
        (list(e.absolute_path), e.message) for e in Draft202012Validator(schema()).iter_errors(doc)
    ]
    if not found:
        found = _semantic_errors(doc, allow_interpreter)
    if found:
        found.sort(key=lambda item: (_line_of(node, item[0]) or 0, str(item[0])))
        problems = [
            RunbookError(path, _line_of(node, loc), ".".join(map(str, loc)), message)
            for loc, message in found
        ]
        first = problems[0]
        raise RunbookError(first.path, first.line, first.field_path, first.message, problems[1:])
    return Runbook(
        id=doc["id"], version=content_version(doc), doc=doc, path=path, params=doc.get("params", {})
    )


@dataclass
class Catalogue:
    """Runbooks loaded from a directory; invalid files are reported, never loaded."""

    runbooks: dict[str, Runbook] = field(default_factory=dict)
    errors: list[RunbookError] = field(default_factory=list)

    def get(self, runbook_id: str) -> Runbook | None:
        return self.runbooks.get(runbook_id)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.runbooks.values())


def load_dir(directory: Path, allow_interpreter: Collection[str] = ()) -> Catalogue:
    """Load every *.yaml / *.yml in `directory` (not the policy or notifications files);
    `allow_interpreter` comes from the policy (see `parse`)."""
    if not directory.is_dir():
        raise FileNotFoundError(f"runbook directory {directory} does not exist")
    catalogue = Catalogue()
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        if path.stem in ("policy", "notifications"):
            continue
        try:
            rb = parse(path.read_text(), str(path), allow_interpreter)
        except RunbookError as exc:
            catalogue.errors.append(exc)
            continue
        if rb.id in catalogue.runbooks:
            catalogue.errors.append(
                RunbookError(
                    str(path),
                    1,
                    "id",
                    f"duplicate id {rb.id!r} (also in {catalogue.runbooks[rb.id].path})",
                )
            )
            continue
        catalogue.runbooks[rb.id] = rb
    return catalogue


_INTEGER = re.compile(r"-?[0-9]{1,18}")


def _validate_integer(name: str, spec: dict[str, Any], value: Any) -> int:
    """ASCII digits only (no '+', '_', spaces or other scripts' digits), bounded, and held
    to the same pattern / enum / leading-dash rules as strings."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParamError(name, "must be an integer")
    text = str(value)
    if not _INTEGER.fullmatch(text):
        raise ParamError(name, f"must be an integer of at most 18 digits, got {text[:40]!r}")
    if text.startswith("-") and not spec.get("allow_leading_dash"):
        raise ParamError(name, "must not be negative")
    number = int(text)
    if "minimum" in spec and number < spec["minimum"]:
        raise ParamError(name, f"must be at least {spec['minimum']}")
    if "maximum" in spec and number > spec["maximum"]:
        raise ParamError(name, f"must be at most {spec['maximum']}")
    if "enum" in spec and number not in spec["enum"] and text not in map(str, spec["enum"]):
        raise ParamError(name, f"must be one of {spec['enum']}")
    if "pattern" in spec and not re.fullmatch(spec["pattern"], text):
        raise ParamError(name, f"does not match pattern {spec['pattern']!r}")
    return number


def validate_value(name: str, spec: dict[str, Any], value: Any) -> str | int:
    """Check one value against its param spec; it is used only if this passes."""
    if spec["type"] == "integer":
        return _validate_integer(name, spec, value)
    if not isinstance(value, str):
        raise ParamError(name, "must be a string")
    if not value or len(value) > MAX_PARAM_LEN:
        raise ParamError(name, f"must be 1-{MAX_PARAM_LEN} characters")
    if not value.isprintable():
        raise ParamError(name, "contains control characters")
    if value.startswith("-") and not spec.get("allow_leading_dash"):
        raise ParamError(name, "must not start with '-'")
    if "enum" in spec and value not in spec["enum"]:
        raise ParamError(name, f"must be one of {spec['enum']}")
    if "pattern" in spec and not re.fullmatch(spec["pattern"], value):
        raise ParamError(name, f"does not match pattern {spec['pattern']!r}")
    return value


def resolve_params(
    runbook: Runbook,
    *,
    origin_service: str | None,
    labels: dict[str, str],
    overrides: dict[str, Any] | None = None,
    scope: Scope | None = None,
) -> dict[str, Any]:
    """Fill params from their sources (or human overrides) and validate each one.

    Confined params (path, host, unit, process) must also lie inside `scope` (without
    one: the runbook's own roots and allow-lists, and no host is known); a path is kept
    resolved, so what runs is what was checked.
    """
    values: dict[str, Any] = {}
    scope = scope or Scope.of(runbook.params)
    overrides = overrides or {}
    unknown = set(overrides) - set(runbook.params)
    if unknown:
        raise ParamError(sorted(unknown)[0], "is not a parameter of this runbook")
    fixed = sorted(n for n in overrides if runbook.params[n]["source"].startswith("const:"))
    if fixed:
        raise ParamError(fixed[0], "is fixed by the runbook (const) and cannot be set")
    for name, spec in runbook.params.items():
        source = spec["source"]
        if name in overrides:
            raw = overrides[name]
        elif source == "incident.origin_service":
            raw = origin_service
        elif source.startswith("label:"):
            raw = labels.get(source.split(":", 1)[1])
        else:
            raw = source.split(":", 1)[1]
        if raw is None:
            if spec.get("required", True):
                raise ParamError(name, f"required but {source} gave no value")
            continue
        values[name] = validate_value(name, spec, raw)
        if spec["type"] in CONFINED:
            try:
                values[name] = confine(name, spec, values[name], scope)
            except Escape as exc:
                raise ParamError(name, str(exc).split(": ", 1)[-1]) from None
    return values


_MISSING = object()


def render(template: Any, params: dict[str, Any], key: str | None = None) -> Any:
    """Substitute {{ name }} in string leaves; a whole-string template keeps the value's type.

    Substitution happens per leaf value: a parameter can never add keys, list items or
    arguments, whatever characters it holds. Inside a `url` a value is percent-encoded, so
    it cannot move the host, path or query. A list element whose optional param has no
    value is left out rather than passed as an empty or `None` argument.
    """
    if isinstance(template, dict):
        return {k: render(v, params, k) for k, v in template.items()}
    if isinstance(template, list):
        out = [render(v, params, key) for v in template]
        return [v for v in out if v is not _MISSING]
    if isinstance(template, str):
        whole = _TEMPLATE.fullmatch(template.strip())
        if whole:
            value = params.get(whole.group(1))
            return _MISSING if value is None and key is not None else value

        def fill(match: re.Match[str]) -> str:
            value = "" if params.get(match.group(1)) is None else str(params[match.group(1)])
            return quote(value, safe="") if key == "url" else value

        return _TEMPLATE.sub(fill, template)
    return template


def dry_run(runbook: Runbook, params: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Exactly what would run, check and undo with these params, rendered, nothing run
    (secrets appear as their mask)."""
    params = {
        **params,
        **{f"secret.{n}": "***" for n in _SECRET.findall(orjson.dumps(runbook.doc).decode())},
    }
    return {
        section: [
            {
                "name": render(item["name"], params),
                "action": item.get("action") or item.get("check"),
                "with": render(item.get("with", {}), params),
            }
            for item in runbook.doc.get(section, [])
        ]
        for section in ("steps", "verify", "rollback")
    }
