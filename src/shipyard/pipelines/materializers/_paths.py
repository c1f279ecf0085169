"""Files and folders as a normalised ``.tar.gz``, unpacked safely into a fresh temporary folder."""

from __future__ import annotations

import gzip
import io
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from shipyard.errors import InvalidInput
from shipyard.pipelines.materializers._base import Materializer


class PathTar(Materializer):
    name = "path.tar"
    media_type = "application/gzip"

    def handles(self, value: Any) -> bool:
        return isinstance(value, Path)

    def dump(self, value: Any) -> bytes:
        root = Path(value)
        if not root.exists():
            raise InvalidInput(f"step output path {str(root)!r} does not exist: return the Path of a file or folder")
        top = _top_name(root)
        out = io.BytesIO()
        # No file name and mtime 0 in the gzip header; no owner or time in the tar headers.
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as zipped:
            with tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar:
                for _, path, info in _tar_entries(root.resolve(), top):
                    if info.isreg():
                        with path.open("rb") as handle:
                            tar.addfile(info, handle)
                    else:
                        tar.addfile(info)
        return out.getvalue()

    def load(self, data: bytes) -> Any:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            top = _check_members(tar.getmembers())
            target = tempfile.mkdtemp(prefix="shipyard-artifact-")
            try:
                tar.extractall(target, filter="data")  # the stdlib's own checks, behind ours
            except BaseException:
                shutil.rmtree(target, ignore_errors=True)  # no half-unpacked folder left behind
                raise
        return Path(target) / top

    def describe(self, value: Any) -> dict[str, Any]:
        root = Path(value)
        sizes = [info.size for _, _, info in _tar_entries(root.resolve(), _top_name(root)) if info.isreg()]
        kind = "directory" if root.is_dir() else "file"
        return {"kind": kind, "name": _top_name(root), "files": len(sizes), "bytes": sum(sizes)}


def _top_name(path: Path) -> str:
    """The name the step gave (links not followed); it is what ``load`` hands back."""
    return Path(os.path.abspath(path)).name or "root"


def _tar_entries(path: Path, arcname: str, *, top: str | None = None) -> Iterator[tuple[str, Path, tarfile.TarInfo]]:
    """Yield ``(arcname, path, TarInfo)`` depth first, children sorted by name."""
    top = top or arcname
    st = os.lstat(path)
    info = tarfile.TarInfo(arcname)
    info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = stat.S_IMODE(st.st_mode), 0, 0, 0, "", ""
    if stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        if os.path.isabs(target) or not _inside(top, _posix_join(arcname, target)):
            raise InvalidInput(f"{str(path)!r} links to {target!r}, outside the folder: use a relative link inside it, or a copy")
        info.type, info.linkname = tarfile.SYMTYPE, target
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
    elif stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    else:
        raise InvalidInput(f"{str(path)!r} is not a file, folder or link: step outputs cannot hold devices, pipes or sockets")
    yield arcname, path, info
    if info.isdir():
        for child in sorted(path.iterdir(), key=lambda p: p.name):
            yield from _tar_entries(child, f"{arcname}/{child.name}", top=top)


def _posix_join(arcname: str, link: str) -> str:
    """Where a symlink stored at ``arcname`` points, as an archive path."""
    return posixpath.normpath(posixpath.join(posixpath.dirname(arcname), link))


def _inside(top: str, arcname: str) -> bool:
    parts = PurePosixPath(arcname).parts
    return bool(parts) and parts[0] == top and ".." not in parts


def _check_members(members: list[tarfile.TarInfo]) -> str:
    """The one top-level name the archive unpacks to; refuses anything that could land outside it."""
    if not members:
        raise InvalidInput("the path.tar artifact is empty: expected one file or folder")
    top = PurePosixPath(members[0].name).parts[0] if members[0].name else ""
    for member in members:
        name = member.name
        if name.startswith("/") or "\\" in name or not _inside(top, name):
            raise InvalidInput(f"the path.tar artifact has the entry {name!r}: expected paths under {top!r}, no '..'")
        if member.issym() and (member.linkname.startswith("/") or not _inside(top, _posix_join(name, member.linkname))):
            raise InvalidInput(f"the path.tar artifact links {name!r} to {member.linkname!r}, outside {top!r}")
        if member.islnk() and not _inside(top, member.linkname):
            raise InvalidInput(f"the path.tar artifact hard-links {name!r} to {member.linkname!r}, outside {top!r}")
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            raise InvalidInput(f"the path.tar artifact has {name!r}, which is not a file, folder or link")
    return top
