"""SQL over a trace's and an analysis's tables, with DuckDB.

>>> import traceanalyzer as ta
>>> a = ta.analyze(ta.load("sample_traces/seed_unlock_from_worker.csv"))  # doctest: +SKIP
>>> ta.sql(a, "select rule, count(*) from findings group by rule")       # doctest: +SKIP

The trace's Arrow tables are handed to DuckDB as they are (scanned in place, zero-copy);
the analysis's DataFrames are converted to Arrow (numeric columns without a copy). Only
the tables a query names are built (naming ``findings`` runs the rules; ``calls`` alone
does not). ``docs/sql.md`` lists the tables and example queries.

The connection reaches nothing but those tables: it is opened with DuckDB's
``enable_external_access`` off and its configuration locked, so ``COPY ... TO``,
``ATTACH`` of a file, ``read_csv``/``read_text``/``read_parquet`` of a path or URL,
``INSTALL``/``LOAD`` of an extension and ``SET`` are refused (:class:`QueryError`).
"""

from __future__ import annotations

from typing import Callable, Literal, Union

import pandas as pd
import pyarrow as pa

from traceanalyzer.analysis import Analysis
from traceanalyzer.errors import TraceError
from traceanalyzer.escape import path_text
from traceanalyzer.model.dtypes import ADDRESS_COLUMNS, with_addresses
from traceanalyzer.model.trace import Trace
from traceanalyzer.views import AnalysisView
from traceanalyzer.vocabulary import SEVERITIES, SEVERITY_DTYPE

__all__ = ["QueryError", "needs_analysis", "sql", "table_names", "TRACE_TABLES", "ANALYSIS_TABLES"]

Source = Union[Trace, Analysis, AnalysisView]
Table = Union[pa.Table, pd.DataFrame]


class QueryError(TraceError):
    """The SQL text is not valid, or names a table or column that does not exist."""

    def __init__(self, message: str) -> None:
        super().__init__(f"SQL query: {message}")


def _trace_span(trace: Trace) -> pd.DataFrame:
    lo, hi = trace.time_span_ns
    return pd.DataFrame({"start_ns": [lo], "end_ns": [hi]})


#: Tables of a Trace: name -> how to get it (Arrow tables are scanned without a copy).
TRACE_TABLES: dict[str, Callable[[Trace], Table]] = {
    "calls": lambda t: t.table("calls"),
    "cswitch": lambda t: t.table("cswitch"),
    "images": lambda t: t.table("images"),
    "other": lambda t: t.table("other"),
    "processes": lambda t: t.processes,
    "threads": lambda t: t.threads,
    "events": lambda t: t.events_table(),
    "trace_span": _trace_span,
}

#: Tables an Analysis adds to its trace's.
ANALYSIS_TABLES: dict[str, Callable[[Analysis], Table]] = {
    "findings": lambda a: a.findings,
    "problems": lambda a: a.problems,
    "lifecycles": lambda a: a.lifecycles,
    "mappings": lambda a: a.mappings,
    "locks": lambda a: a.locks,
    "leak_timeline": lambda a: a.leak_timeline(),
}


#: DuckDB settings of every query's connection: no files, network or extensions (the
#: registered Arrow tables are read through the connection, not the file system), and no
#: ``SET`` to turn that back on.
_LOCKED_DOWN = {"enable_external_access": False, "autoinstall_known_extensions": False,
                "autoload_known_extensions": False, "lock_configuration": True}
_REFUSED_HINT = "a query reads only the trace's and the analysis's tables"


#: In DuckDB a severity column is this ENUM, least severe first (info < low < medium <
#: high < critical): ORDER BY, min/max, comparisons between severities follow that order.
_CREATE_SEVERITY_TYPE = ("create type severity as enum ("
                         + ", ".join(f"'{s}'" for s in SEVERITY_DTYPE.categories) + ")")


def table_names(source: Source) -> list[str]:
    """The table names a query over ``source`` can use."""
    names = list(TRACE_TABLES)
    if isinstance(source, (Analysis, AnalysisView)):
        names += list(ANALYSIS_TABLES)
    return sorted(names)


def _named_tables(query: str) -> set[str]:
    """The (unqualified) table names ``query`` refers to, in lower case: DuckDB's
    identifiers are case-insensitive (``FROM Findings`` is the findings table)."""
    import duckdb

    if path_text(query) != query:  # bytes of the command line that are not UTF-8
        raise QueryError(f"not UTF-8 text: {path_text(query)}")
    con = _connect()  # a query may name the severity type ('high'::severity)
    try:
        return {w.split(".")[-1].lower() for w in con.get_table_names(query)}
    except duckdb.Error as exc:
        raise _query_error(exc) from None
    finally:
        con.close()


def _connect():
    """A DuckDB connection locked down (``_LOCKED_DOWN``) that knows the severity type."""
    import duckdb

    con = duckdb.connect(config=_LOCKED_DOWN)
    con.execute(_CREATE_SEVERITY_TYPE)
    return con


def needs_analysis(query: str) -> bool:
    """True when ``query`` names a table only an :class:`Analysis` has (findings, ...)."""
    return bool(_named_tables(query) & set(ANALYSIS_TABLES))


def _table(source: Source, name: str) -> Table:
    if isinstance(source, AnalysisView) and name == "calls":
        return source.calls  # the view's calls; other trace tables are the whole trace's
    if isinstance(source, (Analysis, AnalysisView)):
        if name in ANALYSIS_TABLES:
            return ANALYSIS_TABLES[name](source)
        return TRACE_TABLES[name](source.trace)
    return TRACE_TABLES[name](source)


def _as_arrow(table: Table) -> pa.Table:
    """DataFrames go to DuckDB as Arrow (numeric columns without a copy): DuckDB's pandas
    scan does not know the ``address`` dtype."""
    if isinstance(table, pd.DataFrame):
        return pa.Table.from_pandas(table, preserve_index=False)
    return table


def sql(source: Source, query: str, *,
        output: Literal["pandas", "arrow"] = "pandas") -> pd.DataFrame | pa.Table:
    """Run one SQL query (DuckDB dialect) over the tables of ``source``.

    source: a :class:`Trace` (tables calls, cswitch, images, other, processes, threads,
    events, trace_span) or an :class:`Analysis` (those plus findings, problems,
    lifecycles, mappings, locks, leak_timeline), or a view of one
    (``analysis.for_process(...)``, ``analysis.window(...)``: its tables, and its calls). Times are ``*_ns`` integers in trace
    time; addresses are unsigned 64-bit integers (``printf('0x%x', mdl)`` shows hex);
    ``severity`` is the ENUM ``severity`` (info < low < medium < high < critical), and a
    severity name compared with it (``severity >= 'high'``) is read as one.
    output: 'pandas' (a DataFrame; unsigned address columns such as ``mdl`` keep the
    ``address`` dtype, shown in hex, and ``severity`` the ordered Categorical of
    ``analysis.findings``) or 'arrow' (a ``pyarrow.Table``).

    Raises :class:`QueryError` (one line) for invalid SQL, an unknown table/column, or a
    statement reaching outside the tables (files, URLs, ATTACH, INSTALL/LOAD, SET).
    """
    import duckdb

    if output not in ("pandas", "arrow"):
        raise ValueError(f"output must be 'pandas' or 'arrow', not {output!r}")
    available = set(table_names(source))
    wanted = _named_tables(query)
    if isinstance(source, Trace) and wanted & set(ANALYSIS_TABLES):
        raise QueryError("this query names an analysis table "
                         f"({', '.join(sorted(set(ANALYSIS_TABLES) & wanted))}): "
                         "pass ta.analyze(trace) instead of the trace")
    con = _connect()
    try:
        for name in sorted(wanted):
            if name in available:
                _register(con, name, _table(source, name))
        try:
            rel = con.sql(_severity_literals(query))
            if rel is None:
                raise QueryError("the statement returns no rows (use a SELECT query)")
            table = _narrow_hugeints(rel.to_arrow_table())
        except duckdb.Error as exc:
            raise _query_error(exc) from None
    finally:
        con.close()
    if output == "arrow":
        return table
    hex_columns = [f.name for f in table.schema
                   if f.name in ADDRESS_COLUMNS and pa.types.is_unsigned_integer(f.type)]
    frame = with_addresses(table.to_pandas(types_mapper=_nullable_ints), hex_columns)
    for c in frame.columns:  # the severity ENUM comes back as the analysis's severity dtype
        dtype = frame[c].dtype
        if isinstance(dtype, pd.CategoricalDtype) and \
                list(dtype.categories) == list(SEVERITY_DTYPE.categories):
            frame[c] = frame[c].astype(SEVERITY_DTYPE)
    return frame


def _register(con, name: str, table: Table) -> None:
    """``table`` as ``name`` in ``con``; its severity columns (the pandas ordered
    Categorical, Arrow reads it as text) cast to the ``severity`` ENUM in a view over it."""
    arrow = _as_arrow(table)
    ordered = [c for c in table.columns if table[c].dtype == SEVERITY_DTYPE] \
        if isinstance(table, pd.DataFrame) else []
    if not ordered:
        con.register(name, arrow)
        return
    scanned = f"{name}__arrow"
    con.register(scanned, arrow)
    casts = ", ".join(f'cast("{c}" as severity) as "{c}"' for c in ordered)
    con.execute(f'create view "{name}" as select * replace ({casts}) from "{scanned}"')


_COMPARISONS = frozenset({"<", "<=", ">", ">=", "=", "==", "<>", "!="})


def _severity_literals(query: str) -> str:
    """``query`` with each severity name compared to a column named severity read as
    the ENUM: ``severity >= 'high'`` -> ``severity >= 'high'::severity``, also with the
    literal first and in ``severity [not] between 'a' and 'b'``. DuckDB compares an ENUM
    with a string literal as text (duckdb issue 16623), where 'medium' >= 'high' and
    'critical' < 'high'. Other text is left as written."""
    import duckdb

    spans = []  # (start, end, kind, text) of the tokens, comments left out
    tokens = duckdb.tokenize(query)
    for i, (start, kind) in enumerate(tokens):
        end = tokens[i + 1][0] if i + 1 < len(tokens) else len(query)
        text = query[start:end].rstrip()
        if kind != duckdb.token_type.comment:
            spans.append((start, start + len(text), kind, text))

    def is_severity(j: int) -> bool:
        return 0 <= j < len(spans) and spans[j][2] == duckdb.token_type.identifier \
            and spans[j][3].strip('"').lower() == "severity"

    def word(j: int) -> str:
        return spans[j][3].lower() if 0 <= j < len(spans) else ""

    inserts = []
    for j, (_, end, kind, text) in enumerate(spans):
        if kind != duckdb.token_type.string_const or text[1:-1] not in SEVERITIES:
            continue
        compared = (word(j - 1) in _COMPARISONS and is_severity(j - 2)) or \
            (word(j + 1) in _COMPARISONS and is_severity(j + 2))
        low_bound = word(j - 1) == "between" and is_severity(j - 2 - (word(j - 2) == "not"))
        high_bound = word(j - 1) == "and" and word(j - 3) == "between" and \
            is_severity(j - 4 - (word(j - 4) == "not"))
        if compared or low_bound or high_bound:
            inserts.append(end)
    for at in reversed(inserts):
        query = query[:at] + "::severity" + query[at:]
    return query


def _query_error(exc: Exception) -> QueryError:
    """DuckDB's error as one line, with what a query may name or reach."""
    import duckdb

    if isinstance(exc, duckdb.CatalogException):
        return QueryError(f"{_one_line(exc)} ({_tables_hint()})")
    if isinstance(exc, duckdb.PermissionException) or \
            "configuration has been locked" in str(exc):
        return QueryError(f"{_one_line(exc)} ({_REFUSED_HINT})")
    return QueryError(_one_line(exc))


def _tables_hint() -> str:
    """Every table name a query may use, the analysis's too: the command replays the trace
    for them, and ``ta.sql`` over a bare Trace says to pass ``ta.analyze(trace)``."""
    return f"tables: {', '.join(sorted([*TRACE_TABLES, *ANALYSIS_TABLES]))}"


def _narrow_hugeints(table: pa.Table) -> pa.Table:
    """DuckDB's sum() of integers is a 128-bit integer, decimal128(38, 0) in Arrow: back
    to int64 when every value fits (it does for byte counts), else left as it is."""
    for i, field in enumerate(table.schema):
        t = field.type
        if pa.types.is_decimal(t) and t.scale == 0:
            try:
                table = table.set_column(i, field.name, table.column(i).cast(pa.int64()))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
    return table


_PANDAS_INTS = {pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(),
                pa.int32(): pd.Int32Dtype(), pa.int64(): pd.Int64Dtype(),
                pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
                pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype()}


def _nullable_ints(t: pa.DataType) -> object:
    """Integer columns stay integers (nullable) in pandas, as the analysis tables are."""
    return _PANDAS_INTS.get(t)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:400]
