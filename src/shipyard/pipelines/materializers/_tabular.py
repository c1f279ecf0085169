"""Tables and arrays: pandas DataFrames as Parquet, NumPy arrays as ``.npy``."""

from __future__ import annotations

import io
import sys
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.materializers._base import Materializer


class PandasParquet(Materializer):
    name = "pandas.parquet"
    media_type = "application/vnd.apache.parquet"

    def handles(self, value: Any) -> bool:
        pd = sys.modules.get("pandas")  # not imported means it cannot be a DataFrame
        return pd is not None and isinstance(value, pd.DataFrame)

    def dump(self, value: Any) -> bytes:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(value, preserve_index=not _default_index(value.index))
        out = io.BytesIO()
        # Spelled out so a change of pyarrow defaults cannot change the bytes; Parquet
        # files carry the writer's version but no timestamp.
        pq.write_table(table, out, compression="zstd", compression_level=3, version="2.6", data_page_version="1.0")
        return out.getvalue()

    def load(self, data: bytes) -> Any:
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pandas()

    def describe(self, value: Any) -> dict[str, Any]:
        index = None if _default_index(value.index) else [str(n) for n in value.index.names]
        dtypes = {str(column): str(dtype) for column, dtype in list(value.dtypes.items())[:100]}
        return {"rows": len(value), "columns": value.shape[1], "dtypes": dtypes, "index": index}


def _default_index(index: Any) -> bool:
    """A 0..n-1 RangeIndex with no name: what a reader would make anyway, so not worth storing."""
    pd = sys.modules["pandas"]
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1 and index.name is None


class NumpyNpy(Materializer):
    name = "numpy.npy"
    media_type = "application/x-npy"

    def handles(self, value: Any) -> bool:
        np = sys.modules.get("numpy")
        return np is not None and isinstance(value, np.ndarray)

    def dump(self, value: Any) -> bytes:
        import numpy as np

        if isinstance(value, np.ma.MaskedArray):
            raise InvalidInput("a masked numpy array would lose its mask: return arr.filled(...) or a DataFrame instead")
        if value.dtype.hasobject:
            raise InvalidInput(
                f"a numpy array of dtype {value.dtype} holds Python objects, which only pickle can store: "
                "convert it to a numeric or string dtype, or return a DataFrame or a list instead"
            )
        # A transposed view is equal to its copy but would be written in Fortran order.
        array = np.asarray(value)
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        out = io.BytesIO()
        np.save(out, array, allow_pickle=False)
        return out.getvalue()

    def load(self, data: bytes) -> Any:
        import numpy as np

        # read_array, not np.load: np.load would also accept a zip (npz) and return a lazy file object.
        return np.lib.format.read_array(io.BytesIO(data), allow_pickle=False)

    def describe(self, value: Any) -> dict[str, Any]:
        return {"shape": list(value.shape), "dtype": str(value.dtype), "bytes": int(value.nbytes)}
