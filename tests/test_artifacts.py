"""The content-addressed blob store and artifact path rules."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import posixpath
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shipyard.artifacts import MAX_NAME_LENGTH, ArtifactStore, validate_artifact_path, validate_digest
from shipyard.errors import IntegrityFailure, InvalidInput, NotFound, PayloadTooLarge

MiB = 1024 * 1024


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """The same tests over the local disk and over fsspec's in-memory file system."""
    if request.param == "local":
        yield ArtifactStore(str(tmp_path / "artifacts"))
        return
    memory = ArtifactStore(f"memory://shipyard-test-{uuid.uuid4().hex}")
    yield memory
    memory.fs.rm(memory.root, recursive=True)


def blob_files(store: ArtifactStore) -> list[str]:
    return sorted(store.fs.find(posixpath.join(store.root, "sha256")))


def temp_files(store: ArtifactStore) -> list[str]:
    return sorted(store.fs.ls(posixpath.join(store.root, "tmp"), detail=False))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Boom(Exception):
    """Raised by a chunk source midway through an upload."""


# -- writing -------------------------------------------------------------------


def test_put_bytes_stores_under_its_digest(store: ArtifactStore) -> None:
    data = b"the model weights"
    blob = store.put_bytes(data)
    assert blob.digest == sha256(data)
    assert blob.size == len(data)
    path = store.blob_path(blob.digest)
    assert path.endswith(f"sha256/{blob.digest[:2]}/{blob.digest[2:4]}/{blob.digest}")
    assert blob_files(store) == [path]
    assert store.exists(blob.digest)
    assert store.size(blob.digest) == len(data)
    assert store.get_bytes(blob.digest) == data
    assert temp_files(store) == []


def test_put_chunks_streams_a_large_generator(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    chunk_count = 64
    expected = hashlib.sha256()
    written_before: list[int] = []

    def chunks() -> Iterator[bytes]:
        for index in range(chunk_count):
            # How much of the upload has reached the temp file before this chunk exists.
            written_before.append(sum(os.path.getsize(p) for p in temp_files(store)))
            yield random.Random(index).randbytes(MiB)

    blob = store.put_chunks(chunks())

    for index in range(chunk_count):
        expected.update(random.Random(index).randbytes(MiB))
    assert blob.digest == expected.hexdigest()
    assert blob.size == chunk_count * MiB
    assert store.size(blob.digest) == chunk_count * MiB
    # Each chunk was written out before the next one was asked for: nothing was held whole.
    for index, written in enumerate(written_before):
        assert written >= (index - 1) * MiB
    reread = hashlib.sha256()
    for chunk in store.iter_chunks(blob.digest):
        assert len(chunk) <= MiB
        reread.update(chunk)
    assert reread.hexdigest() == blob.digest
    assert temp_files(store) == []


def test_a_failing_chunk_source_leaves_nothing_behind(store: ArtifactStore) -> None:
    def chunks() -> Iterator[bytes]:
        for index in range(8):
            if index == 5:
                raise Boom("the client went away")
            yield bytes([index]) * 1024

    with pytest.raises(Boom):
        store.put_chunks(chunks())
    assert blob_files(store) == []
    assert temp_files(store) == []


def test_identical_content_is_stored_once(store: ArtifactStore) -> None:
    first = store.put_bytes(b"abcdef")
    second = store.put_chunks([b"ab", b"cd", b"ef"])
    third = store.put_file(io.BytesIO(b"abcdef"))
    assert first == second == third
    assert blob_files(store) == [store.blob_path(first.digest)]
    assert temp_files(store) == []
    other = store.put_bytes(b"abcdeg")
    assert other.digest != first.digest
    assert len(blob_files(store)) == 2


def test_empty_content_is_a_blob_too(store: ArtifactStore) -> None:
    blob = store.put_chunks([])
    assert blob.digest == sha256(b"")
    assert blob.size == 0
    assert store.get_bytes(blob.digest) == b""


def test_max_bytes_refuses_and_stores_nothing(store: ArtifactStore) -> None:
    with pytest.raises(PayloadTooLarge, match="limit of 10 bytes"):
        store.put_chunks([b"12345", b"678901"], max_bytes=10)
    assert blob_files(store) == []
    assert temp_files(store) == []
    exact = store.put_chunks([b"12345", b"67890"], max_bytes=10)
    assert store.get_bytes(exact.digest) == b"1234567890"


def test_max_bytes_applies_to_files(store: ArtifactStore) -> None:
    with pytest.raises(PayloadTooLarge):
        store.put_file(io.BytesIO(b"x" * 2048), max_bytes=2047)
    assert blob_files(store) == []
    assert temp_files(store) == []


def test_expected_digest_must_match(store: ArtifactStore) -> None:
    data = b"declared content"
    assert store.put_chunks([data], expected_digest=sha256(data)).digest == sha256(data)
    wrong = sha256(b"something else")
    with pytest.raises(InvalidInput, match="changed in transit"):
        store.put_chunks([b"tampered content"], expected_digest=wrong)
    assert blob_files(store) == [store.blob_path(sha256(data))]
    assert temp_files(store) == []


# -- async writing ---------------------------------------------------------------


async def _async_chunks(parts: list[bytes], fail_at: int | None = None) -> AsyncIterator[bytes]:
    for index, part in enumerate(parts):
        if index == fail_at:
            raise Boom("the request body broke off")
        await asyncio.sleep(0)
        yield part


def test_put_async_chunks_stores_the_stream(store: ArtifactStore) -> None:
    parts = [random.Random(seed).randbytes(64 * 1024) for seed in range(10)]
    blob = asyncio.run(store.put_async_chunks(_async_chunks(parts)))
    assert blob.digest == sha256(b"".join(parts))
    assert blob.size == 10 * 64 * 1024
    assert store.get_bytes(blob.digest) == b"".join(parts)
    assert temp_files(store) == []


def test_put_async_chunks_failure_leaves_nothing(store: ArtifactStore) -> None:
    with pytest.raises(Boom):
        asyncio.run(store.put_async_chunks(_async_chunks([b"a" * 100] * 5, fail_at=3)))
    assert blob_files(store) == []
    assert temp_files(store) == []


def test_put_async_chunks_enforces_max_bytes(store: ArtifactStore) -> None:
    with pytest.raises(PayloadTooLarge):
        asyncio.run(store.put_async_chunks(_async_chunks([b"a" * 100] * 5), max_bytes=250))
    assert blob_files(store) == []
    assert temp_files(store) == []


def test_put_async_chunks_deduplicates(store: ArtifactStore) -> None:
    first = store.put_bytes(b"same bytes")
    second = asyncio.run(store.put_async_chunks(_async_chunks([b"same ", b"bytes"])))
    assert first == second
    assert len(blob_files(store)) == 1
    assert temp_files(store) == []


# -- reading ---------------------------------------------------------------------


def test_tampered_blob_fails_while_reading(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"x" * 5000)
    store.fs.pipe_file(store.blob_path(blob.digest), b"y" * 5000)
    with pytest.raises(IntegrityFailure, match=blob.digest) as caught:
        store.get_bytes(blob.digest)
    assert "corrupted" in caught.value.message
    assert store.verify(blob.digest) is False


def test_truncated_blob_fails_while_reading(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"0123456789" * 100)
    store.fs.pipe_file(store.blob_path(blob.digest), b"0123456789" * 50)
    chunks = store.iter_chunks(blob.digest, chunk_size=100)
    received = [next(chunks)]
    with pytest.raises(IntegrityFailure):
        received.extend(chunks)
    assert b"".join(received) == b"0123456789" * 50


def test_intact_blob_verifies(store: ArtifactStore) -> None:
    blob = store.put_bytes(b"intact")
    assert store.verify(blob.digest) is True


def test_unknown_digest_is_not_found(store: ArtifactStore) -> None:
    missing = sha256(b"never stored")
    assert store.exists(missing) is False
    with pytest.raises(NotFound, match=missing):
        store.get_bytes(missing)
    with pytest.raises(NotFound, match=missing):
        store.size(missing)
    with pytest.raises(NotFound):
        store.verify(missing)


@pytest.mark.parametrize(
    "digest",
    [
        "",
        "abc",
        "A" * 64,
        "g" * 64,
        "a" * 63,
        "a" * 65,
        "../" + "a" * 61,
        "a" * 62 + "/a",
        " " + "a" * 63,
    ],
)
def test_invalid_digests_are_rejected(store: ArtifactStore, digest: str) -> None:
    with pytest.raises(InvalidInput, match="64 lowercase hex"):
        validate_digest(digest)
    with pytest.raises(InvalidInput):
        store.blob_path(digest)
    with pytest.raises(InvalidInput):
        store.exists(digest)
    with pytest.raises(InvalidInput):
        store.get_bytes(digest)


# -- cleaning ------------------------------------------------------------------------


def test_clean_temp_removes_leftovers_only(store: ArtifactStore) -> None:
    kept = store.put_bytes(b"a finished upload")
    tmp = posixpath.join(store.root, "tmp")
    for name in ("one", "two", "three"):
        store.fs.pipe_file(posixpath.join(tmp, name), b"half an upload")
    assert len(temp_files(store)) == 3
    assert store.clean_temp() == 3
    assert temp_files(store) == []
    assert store.get_bytes(kept.digest) == b"a finished upload"
    assert store.clean_temp() == 0


def test_reopening_a_store_keeps_its_blobs(tmp_path: Path) -> None:
    blob = ArtifactStore(str(tmp_path / "artifacts")).put_bytes(b"persisted")
    again = ArtifactStore(str(tmp_path / "artifacts"))
    assert again.get_bytes(blob.digest) == b"persisted"


def test_memory_store_is_shared_by_url() -> None:
    url = f"memory://shipyard-shared-{uuid.uuid4().hex}"
    writer = ArtifactStore(url)
    try:
        blob = writer.put_chunks(iter([b"in ", b"memory"]))
        reader = ArtifactStore(url)
        assert reader.url == url
        assert reader.get_bytes(blob.digest) == b"in memory"
        assert reader.exists(blob.digest)
    finally:
        writer.fs.rm(writer.root, recursive=True)


# -- artifact paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("model.skops", "model.skops"),
        ("model/model.skops", "model/model.skops"),
        ("plots/roc curve.png", "plots/roc curve.png"),
        ("a/b/c/d.txt", "a/b/c/d.txt"),
        ("v1.2_final-copy@2+x=y,z", "v1.2_final-copy@2+x=y,z"),
        (".hidden", ".hidden"),
        ("a" * MAX_NAME_LENGTH, "a" * MAX_NAME_LENGTH),
    ],
)
def test_valid_artifact_paths(path: str, expected: str) -> None:
    assert validate_artifact_path(path) == expected


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "is empty"),
        ("a" * (MAX_NAME_LENGTH + 1), f"{MAX_NAME_LENGTH + 1} characters long"),
        ("/etc/passwd", "is absolute"),
        ("/", "is absolute"),
        ("C:/Windows/system32", "is absolute"),
        ("c:model.bin", "is absolute"),
        ("C:\\Users\\model.bin", "is absolute"),
        ("plots\\roc.png", "backslash"),
        ("..\\secrets", "backslash"),
        ("..", "'..' segment"),
        ("../outside", "'..' segment"),
        ("model/../../outside", "'..' segment"),
        ("model/..", "'..' segment"),
        ("./model", "'.' or"),
        ("model/./weights", "'.' or"),
        ("model//weights", "an empty"),
        ("model/", "an empty"),
        ("model\nweights", "the segment"),
        ("model\x00.bin", "the segment"),
        ("model?.bin", "the segment"),
        ("model*", "the segment"),
        ("mödel.bin", "the segment"),
        (" leading-space", "the segment"),
        ("a/-ok/ bad", "the segment"),
        ("name:stream", "the segment"),
    ],
)
def test_invalid_artifact_paths_name_the_problem(path: str, problem: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_artifact_path(path)
    assert problem in caught.value.message


def test_invalid_segment_message_names_the_segment() -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_artifact_path("plots/roc|curve.png")
    assert "'roc|curve.png'" in caught.value.message
    assert "allowed are letters, digits" in caught.value.message


def test_non_string_path_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="is empty"):
        validate_artifact_path(None)  # type: ignore[arg-type]
