"""Reading one TOML table of ``collector.toml``, key by key, collecting problems.

This is the generic half of the config loader (``config.py`` knows collectord's tables):
``${VAR}`` interpolation, ``X_file`` indirection, type checks with messages that name the
types, and unknown keys with the nearest valid one. Nothing here raises on a bad value: a
problem line is recorded and the caller gets :data:`INVALID`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from collectord.config.checks import MAX_INT, VALUE_FILE_MAX_BYTES, duration_problem, special_file
from collectord.config.durations import DURATION_FORM, parse_duration
from collectord.files import UnsafePathError, read_limited
from collectord.secret import Secret, scrub

Kind = Literal["str", "int", "float", "bool", "duration", "str_list", "path", "path_list"]


class _Marker:
    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


#: The key is not set.
MISSING: Final[Any] = _Marker("MISSING")
#: The key is set but wrong; the problem has been recorded.
INVALID: Final[Any] = _Marker("INVALID")

_REFERENCE = re.compile(r"\$\$|\$\{(?P<name>[^}]*)\}|\$\{")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: A value written in the file is shown in a problem line up to this many characters.
_SHOWN_MAX: Final = 80
#: Longest problem line (after the file name).
_LINE_MAX: Final = 600
#: Values from variables and files shorter than this are not masked in messages.
_HIDE_FROM: Final = 12
#: Control characters (a key name may hold any) are escaped: a problem is one line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x80-\x9f\u2028\u2029]")
#: Keys whose values are secrets even when the caller does not say so: never shown.
SECRET_NAME: Final = re.compile(
    r"token(?!_check_interval)|secret|password|passwd|credential|auth", re.IGNORECASE
)


def substitute(text: str, environ: Mapping[str, str]) -> str | None:
    """``text`` with each ``${VAR}`` replaced from ``environ`` and ``$$`` turned into ``$``,
    as :meth:`Table.take` reads it; ``None`` when a variable is not set (or malformed)."""
    unset: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if match.group(0) == "$$":
            return "$"
        if name is None or name not in environ:
            unset.append(name or "")
            return ""
        return environ[name]

    result = _REFERENCE.sub(replace, text)
    return None if unset else result


@dataclass
class Context:
    """What every table of one config file shares: where problems and warnings go."""

    file: str
    base_dir: Path
    environ: Mapping[str, str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Values never to be shown: what ``${VAR}`` and ``X_file`` gave, and secrets.
    hidden: set[str] = field(default_factory=set)

    def hide(self, value: object, *, secret: bool = False) -> None:
        """Keep ``value`` (a string, or the strings in a list or table) out of every
        problem and warning line, whatever the message that would show it. Short values
        that are not ``secret`` are left alone (hiding ``"info"`` would garble messages;
        tokens and app secrets are long)."""
        if isinstance(value, Secret):
            value = value.reveal()
        if isinstance(value, str):
            if secret or len(value) >= _HIDE_FROM:
                self.hidden.add(value)
        elif isinstance(value, list | tuple):
            for item in value:
                self.hide(item, secret=secret)
        elif isinstance(value, Mapping):
            for item in value.values():
                self.hide(item, secret=secret)

    def line(self, table: str | None, key: str | None, what: str) -> str:
        """``{file}: {table}: {key}: {what}``, leaving out the parts that are ``None``;
        hidden values and anything shaped like a token are masked, control characters
        escaped."""
        text = ": ".join(part for part in (table, key, what) if part is not None)
        text = scrub(text, sorted(self.hidden, key=len, reverse=True))
        text = _CONTROL.sub(lambda m: repr(m.group(0))[1:-1], text)
        if len(text) > _LINE_MAX:  # a key or value of a megabyte stays one readable line
            text = f"{text[: _LINE_MAX - 20]}... (cut)"
        return f"{self.file}: {text}" if text else self.file

    def problem(self, table: str | None, key: str | None, what: str) -> None:
        self.problems.append(self.line(table, key, what))

    def warn(self, table: str | None, key: str | None, what: str) -> None:
        self.warnings.append(self.line(table, key, what))

    def path(self, text: str) -> Path:
        """``text`` as a path, ``~`` expanded, relative to the config file's directory."""
        return self.base_dir / Path(text).expanduser()


def type_name(value: object) -> str:
    """How a TOML value's type is named in messages: ``a string``, ``an integer``, ..."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, dt.date | dt.time):
        return "a date/time"
    return type(value).__name__


def suggestion(word: str, candidates: Iterable[str], *, fmt: str = "'{}'") -> str:
    """`` (did you mean 'x'?)`` for the nearest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean {fmt.format(close[0])}?)" if close else ""


class Table:
    """One TOML table being read. Call :meth:`take` per known key, then :meth:`finish`."""

    def __init__(self, ctx: Context, label: str, data: Mapping[str, Any]) -> None:
        self.ctx = ctx
        self.label = label
        self.data = data
        #: Keys this table accepts (filled by :meth:`take` and :meth:`accept`).
        self.known: set[str] = set()
        #: Where the values not written literally came from (``${PAGE_TOKEN}``, ``the
        #: file /run/secrets/x``), by key; such values are never shown.
        self.origins: dict[str, str] = {}

    def problem(self, key: str | None, what: str) -> None:
        self.ctx.problem(self.label, key, what)

    def accept(self, *keys: str) -> None:
        """Declare keys that are read some other way (sub-tables), so they are not unknown."""
        self.known.update(keys)

    def got(self, key: str, value: object, *, secret: bool = False) -> str:
        """How a problem line ends after saying what is wrong with ``key``'s ``value``:
        ``, got 'x'`` for a value written in the file, else a note saying where it came
        from and that it is not shown (a ``${VAR}``, an ``X_file``, a secret)."""
        base = key.removesuffix("_file")
        origin = self.origins.get(key) or self.origins.get(base)
        if origin is not None:
            return f" (the value comes from {origin}, not shown)"
        if secret or SECRET_NAME.search(key):
            return " (the value is a secret, not shown)"
        shown = repr(value)
        if len(shown) > _SHOWN_MAX:  # one readable line, whatever the file holds
            shown = f"{shown[: _SHOWN_MAX - 20]}... ({len(str(value))} characters)"
        return f", got {shown}"

    def shown(self, key: str, *, secret: bool = False) -> bool:
        """Whether :meth:`got` would show ``key``'s value."""
        return self.got(key, None, secret=secret) == ", got None"

    def given(self, key: str) -> bool:
        """Whether ``key`` or ``key_file`` is present."""
        return key in self.data or f"{key}_file" in self.data

    def take(self, key: str, kind: Kind, *, secret: bool = False, required: bool = False) -> Any:
        """The value of ``key`` (or of the file ``key_file`` names) checked as ``kind``.

        Returns the converted value (a :class:`Secret` when ``secret``), :data:`MISSING`
        or :data:`INVALID`.
        """
        file_key = f"{key}_file"
        self.known.update((key, file_key))
        if key in self.data and file_key in self.data:
            self.problem(key, f"set either {key} or {file_key}, not both")
            return INVALID
        from_file = file_key in self.data
        if from_file:
            value = self._read_file(key, file_key)
        elif key in self.data:
            value = self._expand(key, key, self.data[key])
        else:
            value = MISSING
        if value is MISSING:
            if required:
                self.problem(key, "missing required key")
            return value
        if value is INVALID:
            return value
        if secret or SECRET_NAME.search(key):
            self.ctx.hide(value, secret=True)
        try:
            converted = self._convert(value, kind, from_file=from_file, secret=secret)
        except (ValueError, OverflowError) as exc:
            self.problem(file_key if from_file else key, str(exc))
            return INVALID
        return Secret(converted) if secret and isinstance(converted, str) else converted

    def finish(self, *, strict: bool = True) -> None:
        """Report every key that was not declared (only when ``strict``)."""
        if not strict:
            return
        for key in self.data:
            if key not in self.known:
                self.problem(key, "unknown key" + suggestion(key, sorted(self.known)))

    # -- the steps of take() ----------------------------------------------------------

    def _read_file(self, key: str, file_key: str) -> Any:
        where = self._expand(key, file_key, self.data[file_key])
        if where is MISSING or where is INVALID:
            return where
        if not isinstance(where, str) or not where:
            got = type_name(where) if not isinstance(where, str) else "an empty string"
            self.problem(file_key, f"expected the path of a file, got {got}")
            return INVALID
        path = self.ctx.path(where)
        named = self.origins.get(file_key) or str(path)
        kind = special_file(path)
        try:
            if kind is not None:  # a FIFO would hang the read, a device never end
                raise UnsafePathError(f"it is {kind}, not a regular file")
            text = read_limited(path, VALUE_FILE_MAX_BYTES).decode("utf-8")
        except UnsafePathError as exc:
            if kind is None:  # read_limited's own refusal
                oversize = "larger" in str(exc)
                exc = UnsafePathError(
                    "it is larger than 64 KiB" if oversize else "it is not a regular file"
                )
            self.problem(file_key, f"cannot read {named}: {exc}")
            return INVALID
        except OSError as exc:
            self.problem(file_key, f"cannot read {named}: {exc.strerror or type(exc).__name__}")
            return INVALID
        except UnicodeDecodeError:
            self.problem(file_key, f"cannot read {named}: not UTF-8 text")
            return INVALID
        self.ctx.hide(text.strip(), secret=bool(SECRET_NAME.search(key)))
        self.origins[key] = f"the file {named}"
        return text.strip()

    def _expand(self, key: str, report_key: str, value: Any) -> Any:
        """Replace ``${VAR}`` in a string, or in the strings of an array."""
        if isinstance(value, str):
            return self._interpolate(key, report_key, value)
        if isinstance(value, list):
            items = []
            for item in value:
                expanded = (
                    self._interpolate(key, report_key, item) if isinstance(item, str) else item
                )
                if expanded is INVALID:
                    return INVALID
                if expanded is not MISSING:
                    items.append(expanded)
            return items
        return value

    def _interpolate(self, key: str, report_key: str, text: str) -> Any:
        used: list[str] = []
        missing: list[str] = []
        bad: list[str] = []

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name = match.group("name")
            if name is None:
                bad.append("'${' without a closing '}' (write $$ for a literal $)")
            elif not _VARIABLE_NAME.fullmatch(name):
                bad.append(f"'${{{name}}}' is not a valid environment variable name")
            elif name in self.ctx.environ:
                used.append(name)
                return self.ctx.environ[name]
            else:
                missing.append(name)
            return ""

        result = _REFERENCE.sub(replace, text)
        if used:
            names = ", ".join(f"${{{name}}}" for name in dict.fromkeys(used))
            self.origins[report_key] = text if len(text) <= 80 else names
            for name in used:
                self.ctx.hide(self.ctx.environ[name], secret=bool(SECRET_NAME.search(key)))
        if bad:
            self.problem(report_key, bad[0])
            return INVALID
        if missing:
            names = ", ".join(dict.fromkeys(missing))
            plural = "s" if len(set(missing)) > 1 else ""
            verb = "are" if plural else "is"
            self.problem(report_key, f"environment variable{plural} {names} {verb} not set")
            return INVALID
        return result

    def _convert(self, value: Any, kind: Kind, *, from_file: bool, secret: bool) -> Any:
        if from_file:
            value = _from_text(value, kind)
        if kind in ("str", "path"):
            if not isinstance(value, str):
                hint = ""
                if isinstance(value, int | float) and not isinstance(value, bool) and not secret:
                    hint = f' (write it in quotes: "{value}")'
                raise ValueError(f"expected a string, got {type_name(value)}{hint}")
            if kind == "path":
                if not value:
                    raise ValueError("expected a path, got an empty string")
                return self.ctx.path(value)
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"expected an integer, got {type_name(value)}")
            if abs(value) > MAX_INT:
                raise ValueError("is too large (integers must fit in 64 bits)")
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number, got {type_name(value)}")
            if (isinstance(value, int) and abs(value) > MAX_INT) or not math.isfinite(value):
                raise ValueError("expected a finite number of reasonable size")
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected a boolean (true or false), got {type_name(value)}")
            return value
        if kind == "duration":
            if not isinstance(value, str):
                raise ValueError(f"expected {DURATION_FORM}, got {type_name(value)}")
            seconds = parse_duration(value)
            too_long = duration_problem(seconds)
            if too_long:
                raise ValueError(too_long)
            return seconds
        # str_list, path_list
        if not isinstance(value, list):
            raise ValueError(f"expected an array of strings, got {type_name(value)}")
        for position, item in enumerate(value, 1):
            if not isinstance(item, str):
                raise ValueError(
                    f"expected an array of strings, item {position} is {type_name(item)}"
                )
        if kind == "path_list":
            return tuple(self.ctx.path(item) for item in value if item)
        return tuple(value)


def optional_table(ctx: Context, raw: Any, label: str) -> Table | None:
    """The optional table ``raw`` named ``label``: ``None`` when it is absent, or (with a
    problem) when it is not a table."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        ctx.problem(label, None, f"expected a table, got {type_name(raw)}")
        return None
    return Table(ctx, label, raw)


def sub_table(ctx: Context, data: Mapping[str, Any], key: str, label: str) -> Table:
    """The sub-table ``data[key]`` (empty when absent or not a table)."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        ctx.problem(label, None, f"expected a table, got {type_name(value)}")
        value = {}
    return Table(ctx, label, value)


def choice(table: Table, key: str, choices: tuple[str, ...]) -> Any:
    """``table[key]``, one of ``choices`` (lower-cased), or INVALID with a problem."""
    value = table.take(key, "str")
    if not isinstance(value, str):
        return value
    if value.lower() not in choices:
        listed = ", ".join(choices)
        hint = suggestion(value, choices) if table.shown(key) else ""
        table.problem(key, f"expected one of {listed}{table.got(key, value)}{hint}")
        return INVALID
    return value.lower()


def keep(values: dict[str, Any], key: str, value: Any) -> None:
    """Put ``value`` in ``values`` unless it is MISSING or INVALID (the default stays)."""
    if value is not MISSING and value is not INVALID:
        values[key] = value


def _from_text(text: str, kind: Kind) -> Any:
    """Turn the contents of an ``X_file`` into the TOML-like value ``kind`` expects."""
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected an integer in the file") from None
    if kind == "float":
        try:
            return float(text)
        except ValueError:
            raise ValueError("expected a number in the file") from None
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise ValueError("expected true or false in the file")
        return text.lower() == "true"
    if kind in ("str_list", "path_list"):
        return [line.strip() for line in text.splitlines() if line.strip()]
    return text
