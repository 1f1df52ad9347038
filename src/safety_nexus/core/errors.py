"""One root exception, one subclass per domain.

Messages are short, lower-case and name what was wrong ("signal 'p7' refers to unknown
asset 'pump-9'"), so that the CLI and the API can show them unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class NexusError(Exception):
    """Root of every error Safety Nexus raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Whole across processes (ingest.parse_pool): by default a pickled exception is rebuilt
        # by calling its class with its message alone, which loses the attributes (reason,
        # status) or fails where __init__ takes other arguments.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[NexusError], args: tuple[Any, ...], state: dict[str, Any]) -> NexusError:
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration document, located by field path and line."""

    path: str  # dotted field path, e.g. "assets[3].signals[0].normal"
    message: str
    line: int | None = None  # 1-based line in the source document, when known

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        field = f"{self.path}: " if self.path else ""
        return f"{where}{field}{self.message}"


class ConfigError(NexusError):
    """A configuration document (site file, settings) is invalid. Carries every issue found."""

    def __init__(self, issues: list[ConfigIssue], source: str = "") -> None:
        self.issues = issues
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(f"{head}{len(issues)} error(s)\n{lines}" if issues else head.rstrip(": "))


class IngestError(NexusError):
    """Telemetry input was rejected. `reason` is a short stable code used as a metric label."""

    def __init__(
        self, message: str, reason: str = "invalid", status: int = 400, *, subject: str = ""
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status
        self.subject = subject  # what was refused, when it names something (a signal id)


class DetectError(NexusError):
    """The detector bank was misused (wrong shapes, bad parameters)."""


class SimError(NexusError):
    """The simulator was asked for something it cannot do (unknown scenario, bad parameter)."""


class AlarmError(NexusError):
    """An alarm operation is not allowed in the alarm's current state."""


class EvalError(NexusError):
    """An evaluation's data (a benchmark corpus, labels, a score file) is missing or malformed."""


class StoreError(NexusError):
    """Storage failed or holds data this version cannot read."""


class RequestError(NexusError):
    """A request is malformed in a way no narrower error describes (an empty time range)."""


class NotFoundError(NexusError):
    """A named thing (signal, asset, alarm, scenario) does not exist."""


class ControlError(NexusError):
    """A setpoint or directive change was refused: outside its range, not one of its states,
    or made without a user or a reason."""
