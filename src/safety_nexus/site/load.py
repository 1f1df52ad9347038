"""Load a site file, reporting every problem with the field path and line it is about.

YAML is composed into nodes first, because only nodes remember where they were written; the nodes
are then checked for what PyYAML lets through silently (a repeated key, where the last one wins),
mapped from field path to line, constructed into plain data and validated by the schema. Every
pydantic error becomes a `ConfigIssue`, and all of them travel in one `ConfigError`, so an engineer
fixes a file in one pass rather than one error per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from safety_nexus.core.errors import ConfigError, ConfigIssue
from safety_nexus.site.schema import Site
from safety_nexus.site.validate import CrossReferenceError

try:
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]

__all__ = ["load", "load_file"]

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"

Loc = Sequence[int | str]


def load_file(path: str | Path) -> Site:
    """Load the site file at `path`. Every problem, including an unreadable file, is a
    `ConfigError` whose `source` is the path."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            [ConfigIssue("", f"cannot read {source}: not utf-8 text ({err.reason})")], source
        ) from err
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ConfigError(
            [ConfigIssue("", f"cannot read {source}: {reason.lower()}")], source
        ) from err
    return load(text, source, base_dir=Path(path).parent)


def load(text: str, source: str = "<string>", *, base_dir: str | Path | None = None) -> Site:
    """Parse and validate a site document. Raises one `ConfigError` carrying every issue.

    Relative paths in the document (a source's `auth.hmac_key_file`) are relative to
    `base_dir`, which `load_file` sets to the file's folder; by default the working directory.
    """
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise ConfigError([ConfigIssue("", "the document is empty", 1)], source)
        lines = _LineMap()
        issues = lines.walk(root)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as err:
        raise ConfigError([_yaml_issue(err, text)], source) from err
    except yaml.YAMLError as err:
        raise ConfigError([ConfigIssue("", f"yaml: {err}")], source) from err
    except (ValueError, OverflowError) as err:
        # PyYAML's own constructors can fail outside its error hierarchy, e.g. on a date like
        # 2024-13-45 that matches the timestamp pattern but is no date.
        raise ConfigError([ConfigIssue("", f"yaml: cannot read a value: {err}")], source) from err
    finally:
        loader.dispose()
    try:
        site = Site.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        issues += [issue for error in err.errors() for issue in _issues(error, lines)]
    else:
        if not issues:
            return site
    issues.sort(key=lambda issue: issue.line if issue.line is not None else 1 << 62)
    raise ConfigError(issues, source)


def _yaml_issue(err: yaml.MarkedYAMLError, text: str) -> ConfigIssue:
    mark = err.problem_mark or err.context_mark
    problem = err.problem or err.context or "invalid yaml"
    if err.problem and err.context:
        # Where the parser gives up is not always where the mistake is (an unclosed "{" shows
        # on the next line), so say where the construct it was reading began.
        started = err.context_mark
        if started is not None and mark is not None and started.line != mark.line:
            problem = f"{err.problem} ({err.context} at line {started.line + 1})"
        else:
            problem = f"{err.problem} ({err.context})"
    if mark is None:
        return ConfigIssue("", f"yaml: {problem}")
    # At the end of a document without a final newline libyaml points one line past the text.
    last = text.count("\n") + (0 if text.endswith("\n") else 1)
    return ConfigIssue("", f"yaml: {problem}", max(1, min(mark.line + 1, last)))


def _join(path: str, key: int | str) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _LineMap:
    """Field path ("assets[3].signals[0].normal") -> 1-based line, built from YAML nodes.

    A key's line is where the key is written, not its value: "signals:" followed by a block list
    is reported at "signals:". A node reached through several aliases is walked once, so that a
    "billion laughs" document costs no more than its size; paths below the second and later uses
    fall back, like every unrecorded path, to the nearest recorded ancestor: the alias itself.
    """

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self._visited: set[int] = set()

    def walk(self, root: yaml.Node) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []
        self.lines[""] = root.start_mark.line + 1
        # An explicit stack: a deeply nested document must not exhaust Python's recursion limit.
        stack: list[tuple[yaml.Node, str]] = [(root, "")]
        while stack:
            node, path = stack.pop()
            if id(node) in self._visited:
                continue
            self._visited.add(id(node))
            if isinstance(node, yaml.MappingNode):
                issues += self._mapping(node, path, stack)
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    child = _join(path, i)
                    self.lines.setdefault(child, item.start_mark.line + 1)
                    stack.append((item, child))
        return issues

    def _mapping(
        self, node: yaml.MappingNode, path: str, stack: list[tuple[yaml.Node, str]]
    ) -> list[ConfigIssue]:
        issues: list[ConfigIssue] = []
        seen: set[tuple[str, str]] = set()
        merged: list[yaml.Node] = []
        for key, value in node.value:
            if key.tag == _MERGE_TAG:
                merged += value.value if isinstance(value, yaml.SequenceNode) else [value]
                continue
            if not isinstance(key, yaml.ScalarNode):
                continue  # a complex key; the schema rejects it as a field name anyway
            line = key.start_mark.line + 1
            child = _join(path, key.value)
            if key.tag != _STR_TAG:
                # No field is named like a number, a date or a YAML 1.1 bool ("yes", "on"), so
                # such a key is unknown; say so by its text, which the constructed value loses.
                issues.append(ConfigIssue(path, f"unknown field '{key.value}'", line))
                continue
            if (key.tag, key.value) in seen:
                issues.append(ConfigIssue(child, f"duplicate key '{key.value}'", line))
                continue
            seen.add((key.tag, key.value))
            self.lines[child] = line
            stack.append((value, child))
        # Keys merged in with "<<" sit under this path too; keys written here take precedence,
        # so record the merged ones only where nothing is recorded yet.
        for source in merged:
            if isinstance(source, yaml.MappingNode):
                for key, value in source.value:
                    if isinstance(key, yaml.ScalarNode) and key.tag != _MERGE_TAG:
                        child = _join(path, key.value)
                        self.lines.setdefault(child, key.start_mark.line + 1)
                        stack.append((value, child))
        return issues

    def line(self, loc: Loc) -> int | None:
        """The line of the longest prefix of `loc` that was recorded."""
        path = ""
        best = self.lines.get("")
        for part in loc:
            path = _join(path, part)
            if path in self.lines:
                best = self.lines[path]
        return best


def _path(loc: Loc) -> str:
    path = ""
    for part in loc:
        path = _join(path, part)
    return path


def _label(loc: Loc) -> str:
    """How a message names its field: the last key with any list indices after it."""
    last = 0
    for i, part in enumerate(loc):
        if isinstance(part, str):
            last = i
    label = "value"
    for part in loc[last:]:
        label = _join(label if isinstance(part, int) else "", part)
    return label


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing"
    text = repr(value) if isinstance(value, str) else str(value).lower()
    return text if len(text) <= 40 else text[:37] + "..."


_BOUNDS = {
    "greater_than": ("greater than", "gt"),
    "greater_than_equal": ("at least", "ge"),
    "less_than": ("less than", "lt"),
    "less_than_equal": ("at most", "le"),
}

_KIND = {
    "float_type": "a number",
    "float_parsing": "a number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "finite_number": "a finite number",
}


def _issues(error: ErrorDetails, lines: _LineMap) -> list[ConfigIssue]:
    loc = list(error["loc"])
    ctx = error.get("ctx", {})
    cause = ctx.get("error")
    if isinstance(cause, CrossReferenceError):
        # Unwrap so each cross-reference issue keeps its own path (and so its own line).
        return [
            ConfigIssue(_path(full), issue.message, lines.line(full))
            for issue in cause.issues
            for full in [[*loc, *_split(issue.path)]]
        ]
    kind = error["type"]
    if kind == "extra_forbidden":
        return [ConfigIssue(_path(loc[:-1]), f"unknown field '{loc[-1]}'", lines.line(loc))]
    if kind == "invalid_key":
        return []  # the line map reported it already, by the key's text and line
    if kind == "missing":
        return [
            ConfigIssue(_path(loc[:-1]), f"missing required field '{loc[-1]}'", lines.line(loc))
        ]
    return [ConfigIssue(_path(loc), _message(error, loc), lines.line(loc))]


def _split(path: str) -> list[int | str]:
    """The inverse of `_path`, for issue paths produced by the cross-reference checks."""
    parts: list[int | str] = []
    for dotted in path.split("."):
        name, *indices = dotted.split("[")
        if name:
            parts.append(name)
        parts += [int(index.rstrip("]")) for index in indices]
    return parts


def _message(error: ErrorDetails, loc: Loc) -> str:
    kind = error["type"]
    ctx = error.get("ctx", {})
    value = error["input"]
    field = f"'{_label(loc)}'" if loc else "the document"
    if kind in _KIND:
        return f"{field} must be {_KIND[kind]}, not {_show(value)}"
    if kind == "model_type":
        if ctx.get("class_name") == "Range":
            return f"{field} must be a range [low, high], not {_show(value)}"
        return f"{field} must be a mapping, not {_show(value)}"
    if kind == "model_attributes_type":
        return f"{field} must be a mapping, not {_show(value)}"
    if kind == "enum":
        return f"{field} must be one of {ctx.get('expected', '?')}, not {_show(value)}"
    if kind == "literal_error":
        return f"{field} must be {ctx.get('expected', '?')}, not {_show(value)}"
    if kind == "string_pattern_mismatch":
        return (
            f"{_show(value)} is not a valid id "
            "(lower-case letters, digits, '-' and '_', not starting with '-' or '_')"
        )
    if kind == "string_too_short":
        return f"{field} must not be empty"
    if kind == "string_too_long":
        return f"{field} is longer than {ctx.get('max_length', '?')} characters"
    if kind == "too_short":
        return f"{field} needs at least {ctx.get('min_length', '?')} item(s)"
    if kind == "too_long":
        return f"{field} takes at most {ctx.get('max_length', '?')} item(s)"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        relation, bound = _BOUNDS[kind]
        return f"{field} must be {relation} {_number(ctx.get(bound))}, not {_show(value)}"
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    return f"{field}: {error['msg'][:1].lower()}{error['msg'][1:]}"
