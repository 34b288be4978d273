"""Running the prebuilt statements of a chat turn, through SQLAlchemy or straight on SQLite.

The statements on the path of every turn are built once, at import (see
:mod:`bot.storage.storage`). Work written against :class:`Statements` runs them:

* :class:`ConnectionStatements` on a SQLAlchemy :class:`~sqlalchemy.Connection` (PostgreSQL,
  and SQLite work on a thread);
* :class:`SQLiteStatements` on the ``sqlite3`` connection itself. Each statement is compiled
  once, with SQLAlchemy's SQLite dialect and the column types' own conversions; running it then
  costs the driver's call and those conversions. SQLAlchemy's execution machinery (events,
  cache keys, result objects) took three times as long as SQLite itself for these few-row
  statements: most of a stored message.

Rows come back as plain sequences in the order the statement selects its columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast

from sqlalchemy import Connection, CursorResult, Dialect, Executable
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import StatementError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

Row = Sequence[Any]
_Convert = Callable[[Any], Any]
#: Compiled statements kept per connection; the storage layer has a dozen.
_MOST_COMPILED = 256


class Statements(Protocol):
    """Runs prebuilt statements with named parameters."""

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row]:
        """Run ``statement``; the rows it returns (a ``SELECT``, or DML with ``RETURNING``)."""
        ...

    def touched(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """Run ``statement`` (an ``INSERT``, ``UPDATE`` or ``DELETE``); how many rows it touched."""
        ...


def first(rows: Sequence[Row]) -> Row | None:
    """The first of ``rows``, or ``None`` if there are none."""
    return rows[0] if rows else None


class ConnectionStatements:
    """:class:`Statements` on a SQLAlchemy connection."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row]:
        return self._connection.execute(statement, dict(params)).all()

    def touched(self, statement: Executable, params: Mapping[str, Any]) -> int:
        result = self._connection.execute(statement, dict(params))
        return cast(CursorResult[Any], result).rowcount


class SQLiteStatements:
    """:class:`Statements` straight on a ``sqlite3`` connection.

    A statement is compiled the first time it runs with a given set of parameter names (an
    ``INSERT`` or ``UPDATE`` takes its columns from them) and kept for the connection's life.
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self._dialect = sqlite.dialect()
        self._compiled: dict[tuple[int, frozenset[str]], _Compiled] = {}

    def rows(self, statement: Executable, params: Mapping[str, Any]) -> Sequence[Row]:
        compiled = self._compile(statement, params)
        rows = self.connection.execute(compiled.sql, compiled.parameters(params)).fetchall()
        return compiled.converted(rows)

    def touched(self, statement: Executable, params: Mapping[str, Any]) -> int:
        compiled = self._compile(statement, params)
        return self.connection.execute(compiled.sql, compiled.parameters(params)).rowcount

    def _compile(self, statement: Executable, params: Mapping[str, Any]) -> _Compiled:
        key = (id(statement), frozenset(params))
        compiled = self._compiled.get(key)
        # The statement is kept with its compiled form, so its id cannot be reused meanwhile.
        if compiled is None or compiled.statement is not statement:
            if len(self._compiled) >= _MOST_COMPILED:
                self._compiled.clear()  # statements built per call would pile up forever
            compiled = self._compiled[key] = _Compiled(statement, list(params), self._dialect)
        return compiled


class _Compiled:
    """A statement as SQL text for SQLite, with the conversions its values need."""

    def __init__(self, statement: Executable, keys: list[str], dialect: Dialect) -> None:
        clause = cast(ClauseElement, statement)
        compiler = cast(SQLCompiler, clause.compile(dialect=dialect, column_keys=keys))
        if compiler.insert_prefetch or compiler.update_prefetch:
            # Column defaults computed in Python would be skipped: the caller passes them.
            missing = [c.name for c in [*compiler.insert_prefetch, *compiler.update_prefetch]]
            raise TypeError(f"pass a value for every column of the statement; missing {missing}")
        self.statement = statement
        self.sql = compiler.string
        binds = compiler.binds
        self._names = list(compiler.positiontup or ())
        self._fixed = {name: binds[name].value for name in self._names if not binds[name].required}
        self._to_driver = [
            binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in self._names
        ]
        columns = getattr(statement, "exported_columns", ())
        from_driver = [
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns
        ]
        self._from_driver: list[tuple[int, _Convert]] = [
            (index, convert) for index, convert in enumerate(from_driver) if convert is not None
        ]

    def parameters(self, params: Mapping[str, Any]) -> list[Any]:
        """The driver's positional parameters for ``params``.

        A value its column type refuses raises :class:`~sqlalchemy.exc.StatementError`,
        as it would through SQLAlchemy.
        """
        values = []
        for name, convert in zip(self._names, self._to_driver, strict=True):
            value = params[name] if name in params else self._fixed[name]
            try:
                values.append(value if convert is None else convert(value))
            except (TypeError, ValueError) as exc:
                raise StatementError(f"({type(exc).__name__}) {exc}", self.sql, None, exc) from exc
        return values

    def converted(self, rows: list[Any]) -> Sequence[Row]:
        """``rows`` as the driver returned them, with each column's values converted."""
        if not self._from_driver:
            return cast(Sequence[Row], rows)
        result: list[Row] = []
        for row in rows:
            values = list(row)
            for index, convert in self._from_driver:
                values[index] = convert(values[index])
            result.append(values)
        return result
