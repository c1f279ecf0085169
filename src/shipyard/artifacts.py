"""Content-addressed blob store over fsspec.

Blobs live at ``<root>/sha256/<ab>/<cd>/<digest>``. A write streams into
``<root>/tmp/<random>`` while hashing, then moves into place, so a reader never sees a
partial blob and the same bytes are stored once. Reads re-hash as they stream and fail
with ``IntegrityFailure`` if the bytes on disk no longer match their name.
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from shipyard.errors import IntegrityFailure, InvalidInput, NotFound, PayloadTooLarge

CHUNK_SIZE = 1024 * 1024
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_NAME_PART = re.compile(r"^[A-Za-z0-9._@+=,-][A-Za-z0-9 ._@+=,-]*$")
MAX_NAME_LENGTH = 1024


def validate_artifact_path(path: str) -> str:
    """Return ``path`` normalised, or raise: relative, '/'-separated, no '..' or odd bytes."""
    if not isinstance(path, str) or not path:
        raise InvalidInput("artifact path is empty: expected a relative path such as 'model/model.skops'")
    if len(path) > MAX_NAME_LENGTH:
        raise InvalidInput(f"artifact path is {len(path)} characters long: at most {MAX_NAME_LENGTH} are allowed")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise InvalidInput(f"artifact path {path!r} is absolute: expected a relative path such as 'plots/roc.png'")
    if "\\" in path:
        raise InvalidInput(f"artifact path {path!r} has a backslash: separate folders with '/', e.g. 'plots/roc.png'")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise InvalidInput(f"artifact path {path!r} has an empty, '.' or '..' segment: use plain names separated by '/'")
        if not _NAME_PART.match(part):
            raise InvalidInput(
                f"artifact path {path!r} has the segment {part!r}: allowed are letters, digits, spaces and . _ - @ + = ,"
            )
    return "/".join(parts)


def validate_digest(digest: str) -> str:
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InvalidInput(f"digest {digest!r} is not valid: expected 64 lowercase hex characters (sha256)")
    return digest


@dataclass(frozen=True)
class StoredBlob:
    digest: str
    size: int


class ArtifactStore:
    """Put and get blobs by sha256 on any fsspec file system."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root = root.rstrip("/")
        self.url = url
        self._local = isinstance(fs, LocalFileSystem)
        self.fs.makedirs(self._join("tmp"), exist_ok=True)
        self.fs.makedirs(self._join("sha256"), exist_ok=True)

    def _join(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def blob_path(self, digest: str) -> str:
        validate_digest(digest)
        return self._join("sha256", digest[:2], digest[2:4], digest)

    def exists(self, digest: str) -> bool:
        return bool(self.fs.exists(self.blob_path(digest)))

    def size(self, digest: str) -> int:
        try:
            return int(self.fs.size(self.blob_path(digest)))
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is not in the artifact store") from exc

    # -- writing ---------------------------------------------------------------

    def _new_temp(self) -> str:
        return self._join("tmp", uuid.uuid4().hex)

    def _commit(self, temp: str, digest: str, size: int) -> StoredBlob:
        final = self.blob_path(digest)
        if self.fs.exists(final):
            self.fs.rm(temp)
        else:
            self.fs.makedirs(posixpath.dirname(final), exist_ok=True)
            self.fs.mv(temp, final)  # a rename on local disk: atomic
        return StoredBlob(digest, size)

    def _abort(self, temp: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(temp)

    def put_chunks(
        self, chunks: Iterable[bytes], *, max_bytes: int | None = None, expected_digest: str | None = None
    ) -> StoredBlob:
        """Stream ``chunks`` into the store; nothing is visible until every byte is in."""
        with _Upload(self, max_bytes) as upload:
            for chunk in chunks:
                upload.write(chunk)
            return upload.commit(expected_digest)

    async def put_async_chunks(self, chunks: AsyncIterator[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        """As ``put_chunks``, for an ASGI request body."""
        with _Upload(self, max_bytes) as upload:
            async for chunk in chunks:
                upload.write(chunk)
            return upload.commit()

    def put_file(self, file: IO[bytes], *, max_bytes: int | None = None) -> StoredBlob:
        return self.put_chunks(iter(lambda: file.read(CHUNK_SIZE), b""), max_bytes=max_bytes)

    def put_bytes(self, data: bytes) -> StoredBlob:
        return self.put_chunks([data])

    # -- reading ---------------------------------------------------------------

    def iter_chunks(self, digest: str, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """Yield the blob's bytes; raise ``IntegrityFailure`` at the end if they do not hash back."""
        path = self.blob_path(digest)
        try:
            handle = self.fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"blob {digest} is not in the artifact store") from exc
        hasher = hashlib.sha256()
        with handle:
            while chunk := handle.read(chunk_size):
                hasher.update(chunk)
                yield chunk
        if hasher.hexdigest() != digest:
            raise IntegrityFailure(
                f"blob {digest} is corrupted: its bytes hash to {hasher.hexdigest()}; restore it from a backup"
            )

    def get_bytes(self, digest: str) -> bytes:
        return b"".join(self.iter_chunks(digest))

    def verify(self, digest: str) -> bool:
        try:
            for _ in self.iter_chunks(digest):
                pass
        except IntegrityFailure:
            return False
        return True

    def clean_temp(self) -> int:
        """Remove upload leftovers (after a crash); returns how many were removed."""
        leftovers = self.fs.ls(self._join("tmp"), detail=False)
        for path in leftovers:
            self._abort(path)
        return len(leftovers)


class _Upload:
    """One blob being written: hashed and size-checked chunk by chunk, in a temp file.

    Leaving the ``with`` block without ``commit`` (an error, a dropped client) removes
    the temp file, so a half-written blob is never visible.
    """

    def __init__(self, store: ArtifactStore, max_bytes: int | None) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.temp = store._new_temp()
        self.hasher = hashlib.sha256()
        self.size = 0
        self.committed = False

    def __enter__(self) -> _Upload:
        self.handle = self.store.fs.open(self.temp, "wb")
        return self

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise PayloadTooLarge(f"artifact is larger than the limit of {self.max_bytes} bytes")
        self.hasher.update(chunk)
        self.handle.write(chunk)

    def commit(self, expected_digest: str | None = None) -> StoredBlob:
        if self.store._local:
            self.handle.flush()
            _fsync(self.handle)
        self.handle.close()
        digest = self.hasher.hexdigest()
        if expected_digest is not None and digest != expected_digest:
            raise InvalidInput(f"upload has sha256 {digest}, but {expected_digest} was declared: the bytes changed in transit")
        blob = self.store._commit(self.temp, digest, self.size)
        self.committed = True
        return blob

    def __exit__(self, *_: object) -> None:
        if not self.committed:
            with contextlib.suppress(Exception):
                self.handle.close()
            self.store._abort(self.temp)


def _fsync(handle: Any) -> None:
    import os

    fileno = getattr(handle, "fileno", None)
    if fileno is not None:
        with contextlib.suppress(OSError, ValueError):
            os.fsync(fileno())
