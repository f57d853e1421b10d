"""Query pages as pyarrow tables, from the native layer's Arrow batches (no copy of the
value columns: pyarrow imports the buffers annals built)."""

from __future__ import annotations

from typing import Any, Optional, Union

from ._types import DataType


def pyarrow() -> Any:
    try:
        import pyarrow
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_arrow() and to_pandas() need pyarrow: pip install 'annals[arrow]' (or pyarrow>=14)") from e
    return pyarrow


def page_to_table(page: Any, kind: Optional[Union[DataType, str]]) -> Any:
    """The batch of one record kind of a native page as a ``pyarrow.Table``."""
    pa = pyarrow()
    batches = page.batches()
    wanted = None if kind is None else (kind.value if isinstance(kind, DataType) else DataType(str(kind).lower()).value)
    if wanted is None:
        if len(batches) > 1:
            kinds = ", ".join(k for k, _ in batches)
            raise ValueError(f"the page holds several record kinds ({kinds}): pass kind= to pick one")
        if not batches:
            return pa.table({})
        return pa.Table.from_batches([pa.record_batch(batches[0][1])])
    for name, batch in batches:
        if name == wanted:
            return pa.Table.from_batches([pa.record_batch(batch)])
    return pa.table({})
