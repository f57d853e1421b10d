"""The exceptions annals raises, each carrying the data of the Rust error behind it.

Every one is an :class:`Error`. The data are attributes named as in the Rust library's
``annals::Error``: ``line``/``column``/``reason`` of invalid input, ``limit``/``value``/``max``
of an exceeded limit, ``file``/``offset``/``kind`` of corruption, ``path`` of a locked store.
"""

from __future__ import annotations

from typing import Any, Optional


class Error(Exception):
    """Base of every annals error. ``message`` is the text the Rust library gave."""

    def __init__(self, message: str, **data: Any) -> None:
        super().__init__(message)
        self.message = message
        for key, value in data.items():
            setattr(self, key, value)

    def __reduce__(self):  # keeps the data through pickling (multiprocessing, logging)
        data = {k: v for k, v in self.__dict__.items() if k != "message"}
        return (_rebuild, (type(self), self.message, data))


def _rebuild(cls: type, message: str, data: dict) -> "Error":
    return cls(message, **data)


class InvalidInputError(Error, ValueError):
    """Input annals refuses: a malformed value, a naive datetime, an empty name.

    ``field`` names the argument and attribute (``metrics[3].value``) when the refusal came
    from converting Python objects; ``line`` and ``column`` locate it in text input.
    """

    line: Optional[int] = None
    column: Optional[int] = None
    reason: str = ""
    field: Optional[str] = None


class InvalidTypeError(InvalidInputError, TypeError):
    """A value of the wrong Python type (also a :class:`TypeError`)."""


class LimitExceededError(Error):
    """A configured bound was exceeded: ``limit`` (its name, e.g. ``max_string_value_bytes``),
    ``value``, ``max`` and ``context`` (what the value belongs to)."""

    limit: str = ""
    value: int = 0
    max: int = 0
    context: Optional[str] = None


class CorruptionError(Error):
    """Bytes on disk fail a checksum or do not decode: ``file``, ``offset``, ``kind``. The
    data is never returned; ``annals verify --repair`` drops the damaged part."""

    file: str = ""
    offset: int = 0
    kind: str = ""


class UnsupportedVersionError(Error):
    """A file of a newer format version: ``file``, ``found``, ``supported``."""


class PoisonedError(Error):
    """An earlier write or fsync failed (``cause``); the store refuses writes until reopened."""

    cause: str = ""


class LockedError(Error):
    """Another handle (this process or another) has the store open: ``path`` of the lock."""

    path: str = ""


class StoreNotFoundError(Error):
    """No store at ``path`` and ``create=False``."""

    path: str = ""


class ClosedError(Error):
    """The store was closed."""


class DiskFullError(Error):
    """No space left while trying to ``op`` on ``path``; nothing partial was acknowledged."""


class StorageIOError(Error):
    """A file-system operation failed: ``op``, ``path``, ``errno``."""


class TextIndexError(Error):
    """The full-text index could not be read or written (``path``, ``reason``); it is
    derived data that ``annals verify --repair`` removes and the next open rebuilds."""


class ObjectStoreError(Error):
    """The object store holding large diffs failed (``location``, ``reason``)."""


class GitError(Error):
    """A git repository could not be read (``path``, ``reason``)."""


class DuplicateCommitError(Error):
    """A commit hash is stored already, or appears twice in one transaction (``hash``,
    ``in_batch``); nothing of the transaction was written."""

    hash: str = ""
    in_batch: bool = False


class RefusedError(Error):
    """A lifecycle operation was refused because of the store's state (``reason``); nothing
    was changed."""

    reason: str = ""


class InternalError(Error):
    """A consistency check of annals' own output failed (``detail``); the operation was
    abandoned and the store is unchanged. Worth reporting as a bug."""


class TransactionFailed(Error):
    """A commit transaction stored nothing because one of its commits failed or was a
    duplicate; ``results`` holds the :class:`StorageResult` of each commit."""

    results: list = []
