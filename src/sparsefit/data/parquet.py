"""Parquet files read into a :class:`Table`, with the decoded size capped (see :func:`read_parquet`).

pyarrow is imported only when a Parquet file comes along. Row numbers are 1-based records.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sparsefit.data.raw import too_large
from sparsefit.data.table import Table, to_text
from sparsefit.errors import SparsefitError


def read_parquet(path: Path, data: bytes | bytearray, limit: int | None) -> Table:
    """Parquet compresses inside the file (codecs, dictionaries, run lengths: a few KB can hold GBs of
    text), so it is decoded a batch at a time and its decoded size capped like a compressed file's."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not data:
        raise SparsefitError("file is empty", file=path, hint="write the Parquet file again")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
        batches, decoded = [], 0
        for batch in parquet.iter_batches(batch_size=8192):
            decoded += batch.nbytes
            if limit is not None and decoded > limit:
                raise too_large(path, limit)
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
        table.validate(full=True)  # e.g. text that is not UTF-8 would otherwise fail later, in to_pylist
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise unreadable(path, exc) from None
    check_columns(table.column_names, table.num_rows, path)
    return arrow_table(table, path)


def unreadable(path: Path, exc: Exception) -> SparsefitError:
    reason = (str(exc).splitlines() or [type(exc).__name__])[0]
    return SparsefitError(f"not a readable Parquet file ({reason})", file=path,
                          hint="write it again with pandas/pyarrow, or export CSV instead")


def check_columns(names: list[str], rows: int, path: Path) -> None:
    """A Parquet file's columns must have distinct names, and it must hold rows."""
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise SparsefitError("column name appears twice", file=path, column=duplicated[0], hint="rename one of them")
    if rows == 0:
        raise SparsefitError("the file has columns but no rows", file=path, hint="write it again with data rows")


def arrow_table(table: Any, path: Path, first_row: int = 1) -> Table:
    """A :class:`Table` of an Arrow table whose first record is record ``first_row`` of the file."""
    names = table.column_names
    texts: dict[str, list[str]] = {}
    nested: dict[str, str] = {}
    for name, column in zip(names, table.columns):
        texts[name], kind = _arrow_text(column)
        if kind is not None:
            nested[name] = kind
    frame = pd.DataFrame(texts, columns=names, dtype=object).astype(str)
    typed = table.to_pandas(types_mapper=_nullable_types().get)
    return Table(frame=frame, rows=np.arange(first_row, first_row + table.num_rows, dtype=np.int64), path=path, format="parquet",
                 nested=nested, source_values=typed)


def _arrow_text(column: Any) -> tuple[list[str], str | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind_of = column.type
    if pa.types.is_list(kind_of) or pa.types.is_large_list(kind_of) or pa.types.is_fixed_size_list(kind_of):
        flat = kind_of.value_type
        kind = "struct" if pa.types.is_nested(flat) else "list"
        return [to_text(v) for v in column.to_pylist()], kind
    if pa.types.is_nested(kind_of):
        return [json.dumps(v, ensure_ascii=False, default=str) if v is not None else "" for v in column.to_pylist()], "struct"
    if pa.types.is_boolean(kind_of):
        return [to_text(v) for v in column.to_pylist()], None
    try:
        return pc.fill_null(pc.cast(column, pa.string()), "").to_pylist(), None
    except (pa.ArrowException, ValueError):
        return [repr(v) if v is not None else "" for v in column.to_pylist()], "binary"


def _nullable_types() -> dict:
    import pyarrow as pa

    return {
        pa.int8(): pd.Int8Dtype(), pa.int16(): pd.Int16Dtype(), pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(), pa.uint8(): pd.UInt8Dtype(), pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(), pa.uint64(): pd.UInt64Dtype(), pa.bool_(): pd.BooleanDtype(),
        pa.float32(): pd.Float32Dtype(), pa.float64(): pd.Float64Dtype(),
    }
