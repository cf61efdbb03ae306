"""Reading untyped YAML into typed values while collecting every problem with its field path."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The generator owns these labels; letting a spec set them would break joins between rules.
_RESERVED_LABELS = ("sloth_id", "sloth_service", "sloth_slo", "sloth_window")


@dataclass(frozen=True)
class Problem:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class SpecError(Exception):
    """One or more invalid spec files; `problems` lists each with file, field path and reason."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class Reader:
    """Checks shapes and types of one file's YAML, recording problems instead of stopping at the first."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(self.source, path, message))

    def fields(
        self, raw: object, path: str, required: Sequence[str] = (), optional: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.problem(path or "(top level)", f"must be a mapping (got {_kind(raw)})")
            return None
        for key in raw:
            if key not in required and key not in optional:
                allowed = ", ".join(sorted([*required, *optional]))
                self.problem(_join(path, str(key)), f"unknown field (allowed: {allowed})")
        for key in required:
            if raw.get(key) is None:
                self.problem(_join(path, key), "is required")
        return raw

    def string(self, raw: object, path: str) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            self.problem(path, f"must be a string (got {_kind(raw)})")
            return None
        return raw

    def optional_string(self, raw: object, path: str) -> str | None:
        return None if raw is None else self.string(raw, path)

    def name(self, raw: object, path: str, pattern: re.Pattern[str]) -> str | None:
        text = self.string(raw, path)
        if text is not None and not pattern.match(text):
            self.problem(path, f"{text!r} must match {pattern.pattern}")
            return None
        return text

    def number(self, raw: object, path: str) -> float | None:
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.problem(path, f"must be a number (got {_kind(raw)})")
            return None
        return float(raw)

    def string_map(self, raw: object, path: str) -> dict[str, str]:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.problem(path, f"must be a mapping of strings (got {_kind(raw)})")
            return {}
        result: dict[str, str] = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                self.problem(_join(path, str(key)), f"must be a string (got {_kind(value)})")
                continue
            result[str(key)] = str(value)
        return result

    def labels(self, raw: object, path: str) -> dict[str, str]:
        labels = self.string_map(raw, path)
        for key in labels:
            if not _LABEL_NAME.match(key):
                self.problem(_join(path, key), "is not a valid Prometheus label name")
            elif key in _RESERVED_LABELS:
                self.problem(_join(path, key), "is set by the generator and cannot be overridden")
        return labels


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
