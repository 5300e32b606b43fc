"""Conversion of pandas/Arrow data to a table's schema, fast and exact."""


import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dlc_tracking.errors import WarehouseError
from dlc_tracking.warehouse.tables import Column, TableSpec

_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_TABLE = re.compile(r"^[a-z][a-z0-9_]*$")


# ----------------------------------------------------------------------------- conversion


def insert_constant_columns(df: pd.DataFrame, columns: Sequence[tuple[str, str]]) -> None:
    """Insert text columns holding one value each at the front of ``df``, in order.

    They are categoricals with one category, so a partition write stores them as a
    one-entry dictionary without comparing every row (an hour of frames is 180,000 rows).
    """
    codes = np.zeros(len(df), dtype=np.int8)
    for i, (name, value) in enumerate(columns):
        df.insert(i, name, pd.Categorical.from_codes(codes, categories=[value]))


def _check_table_name(name: str) -> None:
    if not isinstance(name, str) or not _TABLE.match(name):
        raise WarehouseError(f"invalid table name {name!r}: use lower-case letters, digits "
                             "and '_', starting with a letter.")


def _check_key(key: str, table: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise WarehouseError(
            f"invalid partition key {key!r} for table {table!r}: use letters, digits, '_', "
            "'.' and '-', starting with a letter or digit (no '/', spaces or commas).")


def _is_text(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t)
            or (pa.types.is_dictionary(t) and _is_text(t.value_type)))


def _to_arrow(spec: TableSpec, df: pd.DataFrame | pa.Table, where: str) -> pa.Table:
    """Validate columns against ``spec`` and cast them; NaN becomes NULL.

    Columns without NULLs are stored as required (Parquet REQUIRED), which writes faster;
    readers see the table's schema either way. An optional column (``Column.optional``)
    the writer leaves out, or gives only NULLs in, is left out of the file (read back as
    NULL), so a partition read and written again is stored as it was.
    """
    if isinstance(df, pa.Table):
        names = df.column_names
    elif isinstance(df, pd.DataFrame):
        names = [str(c) for c in df.columns]
    else:
        raise WarehouseError(f"{where}: expected a pandas DataFrame or pyarrow Table, got "
                             f"{type(df).__name__}.")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    missing = [c.name for c in spec.columns if c.name not in names and not c.optional]
    extra = [c for c in names if c not in spec.column_names]
    if duplicated or missing or extra:
        detail = "; ".join(f"{label} {cols}" for label, cols in (
            ("missing columns", missing), ("unexpected columns", extra),
            ("duplicated columns", duplicated)) if cols)
        raise WarehouseError(f"{where}: columns do not match the table schema: {detail}. "
                             f"Expected exactly {spec.column_names} (optional: "
                             f"{[c.name for c in spec.columns if c.optional]}).")
    arrays, fields = [], []
    for col in spec.columns:
        if col.optional and col.name not in names:
            continue
        values = df.column(col.name) if isinstance(df, pa.Table) else df[col.name]
        try:
            arr = _column_array(values, col.type)
        except (pa.ArrowException, ValueError, TypeError, OverflowError) as exc:
            raise WarehouseError(
                f"{where}: column {col.name!r} cannot be stored as {col.type}: {exc}") from exc
        if col.optional and len(arr) and arr.null_count == len(arr):
            continue  # all NULL: the file stays as files without the column are
        if arr.null_count and not col.nullable:
            raise WarehouseError(f"{where}: column {col.name!r} has {arr.null_count} missing "
                                 "value(s) but may not be NULL.")
        if col.allowed is not None:
            _check_allowed(arr, col, where)
        arrays.append(arr)
        fields.append(pa.field(col.name, arr.type, nullable=arr.null_count > 0))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _column_array(values: pd.Series | pa.ChunkedArray, target: pa.DataType) -> pa.Array:
    """One column as an Array of ``target`` (text may stay dictionary-encoded)."""
    if isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks()
    elif isinstance(values.dtype, pd.CategoricalDtype):
        arr = _from_categorical(values)
    elif pa.types.is_string(target) and values.dtype == object:
        arr = _text_from_objects(values.to_numpy())
    elif values.dtype.kind == "f" and isinstance(values.dtype, np.dtype):
        arr = _from_floats(values.to_numpy())
    else:
        arr = pa.array(values, from_pandas=True)  # NaN -> NULL
    if isinstance(values, pa.ChunkedArray) and pa.types.is_floating(arr.type):
        arr = _nan_to_null(arr)
    if pa.types.is_dictionary(arr.type) and not pa.types.is_dictionary(target):
        if _is_text(arr.type) and pa.types.is_string(target):
            return arr  # stays dictionary-encoded: Parquet stores it as such anyway
        arr = arr.dictionary_decode()
    if pa.types.is_timestamp(target):
        return _timestamps(arr, target)
    if arr.type != target and not pa.types.is_null(arr.type) and not _castable(arr.type, target):
        raise TypeError(f"got {arr.type} values; give the column {target} values")
    if arr.type != target:
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), target)
        arr = arr.cast(target)
        if pa.types.is_floating(target):
            arr = _nan_to_null(arr)
    return arr


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Casts done silently: between numbers (checked for loss) and between text types."""
    numeric = (pa.types.is_integer, pa.types.is_floating)
    if any(f(target) for f in numeric):
        return any(f(source) for f in numeric)
    if _is_text(target):
        return _is_text(source)
    return False


def _nan_to_null(arr: pa.Array) -> pa.Array:
    """NaN -> NULL in a float array (a no-op without NaN)."""
    values = arr.to_numpy(zero_copy_only=False)
    nan = np.isnan(values)
    if not nan.any():
        return arr
    if arr.null_count:
        nan |= arr.is_null().to_numpy(zero_copy_only=False)
    return pa.array(values, type=arr.type, mask=nan)


def _from_floats(values: np.ndarray) -> pa.Array:
    """A float array over the numpy buffer (no copy without NaN); NaN -> NULL."""
    nan = np.isnan(values)
    return pa.array(values, mask=nan) if nan.any() else pa.array(values)


def _from_categorical(values: pd.Series) -> pa.Array:
    """A pandas Categorical as a DictionaryArray over its codes (no copy); -1 -> NULL."""
    codes = np.ascontiguousarray(values.array.codes)
    if len(values.cat.categories) == 0:
        return pa.nulls(len(codes))  # all missing
    dictionary = pa.array(values.cat.categories.to_numpy(), from_pandas=True)
    if len(codes) and not -1 <= codes.min() <= codes.max() < len(dictionary):
        raise ValueError("categorical codes out of range")
    if len(codes) and codes.min() < 0:
        indices = pa.array(codes, mask=codes < 0)
    else:  # the codes' buffer as it is (pa.array copies small integer types)
        indices = pa.Array.from_buffers(pa.from_numpy_dtype(codes.dtype), len(codes),
                                        [None, pa.py_buffer(codes)])
    return pa.DictionaryArray.from_arrays(indices, dictionary, safe=False)  # checked above


def _smallest_indices(codes: np.ndarray, n_values: int) -> np.ndarray:
    """Dictionary indices in the smallest integer type (Parquet encodes int8 ones faster)."""
    for dtype in (np.int8, np.int16, np.int32):
        if n_values <= np.iinfo(dtype).max:
            return codes.astype(dtype, copy=False)
    raise ValueError(f"{n_values} distinct values: too many for a dictionary")


def _text_from_objects(values: np.ndarray) -> pa.Array:
    """Text column from an object array; constant or low-cardinality -> dictionary."""
    n = len(values)
    if n == 0:
        return pa.array([], type=pa.string())
    first = values[0]
    if isinstance(first, str) and bool((values == first).all()):
        zeros = np.zeros(n, dtype=np.int8)
        return pa.DictionaryArray.from_arrays(
            pa.Array.from_buffers(pa.int8(), n, [None, pa.py_buffer(zeros)]),
            pa.array([first], type=pa.string()), safe=False)
    if n >= 1000:
        codes, uniques = pd.factorize(values)
        if len(uniques) * 4 <= n:
            if not all(isinstance(u, str) for u in uniques):
                bad = next(u for u in uniques if not isinstance(u, str))
                raise TypeError(f"expected text, found {type(bad).__name__} {bad!r}")
            indices = pa.array(_smallest_indices(codes, len(uniques)), mask=codes < 0)
            return pa.DictionaryArray.from_arrays(indices, pa.array(uniques, type=pa.string()))
    return pa.array(values, type=pa.string(), from_pandas=True)


def _timestamps(arr: pa.Array, target: pa.TimestampType) -> pa.Array:
    """Time-zone-aware timestamps converted to ``target`` (UTC); naive ones refused."""
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), target)
    if not pa.types.is_timestamp(arr.type):
        raise TypeError(f"expected time-zone-aware timestamps, got {arr.type}; convert with "
                        "pandas.to_datetime(..., utc=True)")
    if arr.type.tz is None:
        raise TypeError("timestamps have no time zone; attach one (e.g. "
                        "Series.dt.tz_localize('Europe/Oslo')) so the instant is unambiguous")
    return arr.cast(target, safe=False)


def _check_allowed(arr: pa.Array, col: Column, where: str) -> None:
    plain = arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr
    bad = pc.filter(plain, pc.invert(pc.is_in(plain, pa.array(col.allowed))))
    bad = bad.drop_null()
    if len(bad):
        raise WarehouseError(f"{where}: column {col.name!r} holds {bad[0].as_py()!r}; allowed "
                             f"values are {list(col.allowed)}.")


def _check_partition_values(arr: pa.ChunkedArray | pa.Array, key: str, where: str,
                            column: str) -> None:
    """Every row of a partition must carry the partition key."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type) and len(arr.dictionary) == 1:
        values = set(arr.dictionary.to_pylist()) if len(arr) > arr.null_count else set()
    elif pa.types.is_dictionary(arr.type):
        used = pc.unique(arr.indices).drop_null()
        values = set(arr.dictionary.take(used).to_pylist())
    else:
        values = set(pc.unique(arr).to_pylist())
    values.discard(None)
    if values - {key}:
        shown = sorted(values - {key})[:3]
        raise WarehouseError(f"{where}: rows have {column} {shown}; every row of partition "
                             f"{key!r} must have {column} = {key!r}.")


def _free_arrow(df: pd.DataFrame | pa.Table, where: str) -> pa.Table:
    """Any DataFrame as an Arrow table (flexible tables)."""
    if isinstance(df, pa.Table):
        return df
    if not isinstance(df, pd.DataFrame):
        raise WarehouseError(f"{where}: expected a pandas DataFrame, got {type(df).__name__}.")
    bad = [c for c in df.columns if not isinstance(c, str) or not c]
    if bad:
        raise WarehouseError(f"{where}: column names must be non-empty strings, got {bad}.")
    try:
        return pa.Table.from_pandas(df, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        raise WarehouseError(f"{where}: cannot store the DataFrame ({exc}); give each column "
                             "one type.") from exc


def _conform(data: pa.Table, spec: TableSpec | None) -> pa.Table:
    """A table read from a file, in the spec's columns and types (dictionaries decoded)."""
    if spec is None:
        return data
    arrays = []
    for col in spec.columns:
        if col.name in data.column_names:
            arr = data.column(col.name)
            if arr.type != col.type:
                arr = arr.cast(col.type)
        else:  # a file from before the column existed
            arr = pa.chunked_array([pa.nulls(data.num_rows, col.type)])
        arrays.append(arr)
    return pa.Table.from_arrays(arrays, schema=spec.schema)


