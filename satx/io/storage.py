"""Local folders and `gs://` prefixes behind one small interface.

Every write is atomic: local files are written to a hidden temporary name and renamed; a GCS
object only becomes visible when its upload completes. GCS goes through google-cloud-storage
(retrying idempotent calls), which honours `STORAGE_EMULATOR_HOST`, so the same code runs
against fake-gcs-server in tests. TensorFlow's own gs:// file system cannot be pointed at an
emulator, so satx never relies on it for writes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, TypeVar

if TYPE_CHECKING:  # imported lazily at run time: google-cloud-storage is slow to import
    from google.api_core.retry import Retry
    from google.cloud import storage as gcs

from satx.errors import StorageError
from satx.io.targets import check_target

T = TypeVar("T")

GCS_SCHEME = "gs://"
_TIMEOUT_S = 120


def is_gcs(path: str) -> bool:
    """Whether `path` is a `gs://bucket/prefix` URL."""
    return str(path).startswith(GCS_SCHEME)


def _split_gcs(url: str) -> tuple[str, str]:
    """Split `gs://bucket/a/b` into (`bucket`, `a/b`)."""
    rest = url[len(GCS_SCHEME) :]
    bucket, _, prefix = rest.partition("/")
    if not bucket:
        raise StorageError(f"{url}: no bucket name; expected gs://BUCKET/PREFIX")
    return bucket, prefix.strip("/")


class Store(Protocol):
    """A folder-like root (local directory or gs:// prefix) holding named files."""

    root: str

    def url(self, name: str) -> str:
        """Printable location (path or gs:// URL) of `name`."""

    def exists(self, name: str) -> bool:
        """Whether `name` exists."""

    def size(self, name: str) -> int:
        """Size of `name` in bytes."""

    def list(self, prefix: str = "") -> list[str]:
        """Sorted names of all files under `prefix`, relative to the root."""

    def read_bytes(self, name: str) -> bytes:
        """Contents of `name`."""

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write `name` atomically."""

    def put_file(self, local_path: str, name: str) -> None:
        """Move a finished local file to `name` atomically (consumes it)."""

    def get_file(self, name: str, local_path: str) -> None:
        """Copy `name` to a local path."""

    def open(self, name: str) -> BinaryIO:
        """`name` opened for streaming reads (a context manager)."""

    def read_range(self, name: str, start: int, length: int) -> bytes:
        """`length` bytes of `name` from `start` (fewer at its end)."""

    def delete(self, name: str) -> None:
        """Remove `name` if present."""


def atomic_write_local(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temporary sibling and an atomic rename.

    Raises:
        StorageError: the write failed (a full disk, say); no temporary file is left.
    """
    path = Path(path)
    check_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise StorageError(f"could not write {path}: {err.strerror or err}") from err


class LocalStore:
    """A local directory."""

    def __init__(self, root: str | Path):
        self.root = str(Path(root).expanduser().absolute())

    def path(self, name: str) -> Path:
        """The local path of `name`."""
        return Path(self.root) / name

    def url(self, name: str) -> str:
        """Printable location of `name`."""
        return str(self.path(name))

    def exists(self, name: str) -> bool:
        """Whether `name` exists."""
        return self.path(name).exists()

    def size(self, name: str) -> int:
        """Size of `name` in bytes."""
        return self.path(name).stat().st_size

    def list(self, prefix: str = "") -> list[str]:
        """All files under `prefix` (recursive), as sorted names relative to the root."""
        base = Path(self.root)
        start = base / prefix
        if not start.exists():
            return []
        return sorted(p.relative_to(base).as_posix() for p in start.rglob("*") if p.is_file())

    def read_bytes(self, name: str) -> bytes:
        """Contents of `name`."""
        return self.path(name).read_bytes()

    def write_bytes(self, name: str, data: bytes) -> None:
        """Atomically write `name`."""
        atomic_write_local(self.path(name), data)

    def put_file(self, local_path: str, name: str) -> None:
        """Move a finished local file into place atomically (consumes `local_path`)."""
        target = self.path(name)
        check_target(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local_path, target)
        except OSError:  # different file system: copy next to the target, then rename
            tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex[:8]}")
            shutil.copyfile(local_path, tmp)
            os.replace(tmp, target)
            os.unlink(local_path)

    def get_file(self, name: str, local_path: str) -> None:
        """Copy `name` to a local path."""
        shutil.copyfile(self.path(name), local_path)

    def open(self, name: str) -> BinaryIO:
        """`name` opened for reading."""
        return open(self.path(name), "rb")

    def read_range(self, name: str, start: int, length: int) -> bytes:
        """`length` bytes of `name` from `start` (fewer at its end)."""
        with open(self.path(name), "rb") as f:
            f.seek(start)
            return f.read(length)

    def delete(self, name: str) -> None:
        """Remove `name` if present."""
        self.path(name).unlink(missing_ok=True)


@functools.lru_cache(maxsize=1)
def gcs_client() -> gcs.Client:
    """One google-cloud-storage client per process (emulator-aware)."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        project = os.environ.get("GOOGLE_CLOUD_PROJECT", "satx-emulator")
        return storage.Client(project=project, credentials=AnonymousCredentials())
    try:
        return storage.Client()
    except DefaultCredentialsError as err:
        raise StorageError(
            "no Google Cloud credentials for gs:// access: run "
            "`gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"
        ) from err


class GcsStore:
    """A `gs://bucket/prefix` through google-cloud-storage, retrying idempotent calls."""

    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.bucket_name, self.prefix = _split_gcs(self.root)

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def _blob(self, name: str) -> gcs.Blob:
        return gcs_client().bucket(self.bucket_name).blob(self._key(name))

    def url(self, name: str) -> str:
        """The gs:// URL of `name`."""
        return f"{GCS_SCHEME}{self.bucket_name}/{self._key(name)}"

    def _call(self, what: str, name: str, fn: Callable[[Retry], T]) -> T:
        from google.api_core import exceptions
        from google.api_core.retry import Retry

        retry = Retry(initial=0.5, maximum=8.0, multiplier=2.0, timeout=_TIMEOUT_S)
        try:
            return fn(retry)
        except exceptions.NotFound as err:
            raise FileNotFoundError(self.url(name)) from err
        except exceptions.GoogleAPICallError as err:
            raise StorageError(f"{what} {self.url(name)} failed: {err}") from err

    def exists(self, name: str) -> bool:
        """Whether the object exists."""
        return self._call("stat", name, lambda r: self._blob(name).exists(retry=r))

    def _stat(self, name: str) -> Any:
        blob = self._call(
            "stat",
            name,
            lambda r: gcs_client().bucket(self.bucket_name).get_blob(self._key(name), retry=r),
        )
        if blob is None:
            raise FileNotFoundError(self.url(name))
        return blob

    def size(self, name: str) -> int:
        """Object size in bytes."""
        return int(self._stat(name).size)

    def etag(self, name: str) -> str:
        """The object's ETag (its content's version), else its MD5."""
        return str(self._stat(name).etag or self._stat(name).md5_hash)

    def list(self, prefix: str = "") -> list[str]:
        """All objects under `prefix`, as sorted names relative to the root."""
        full = self._key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        cut = len(self.prefix) + 1 if self.prefix else 0

        def run(retry: Retry) -> list[str]:
            blobs = gcs_client().list_blobs(self.bucket_name, prefix=full, retry=retry)
            return sorted(b.name[cut:] for b in blobs if not b.name.endswith("/"))

        return self._call("list", prefix, run)

    def read_bytes(self, name: str) -> bytes:
        """Download an object's contents."""
        return self._call(
            "read", name, lambda r: self._blob(name).download_as_bytes(retry=r, timeout=_TIMEOUT_S)
        )

    def write_bytes(self, name: str, data: bytes) -> None:
        """Upload bytes as one object (atomic: visible only once complete)."""
        self._call(
            "write",
            name,
            lambda r: self._blob(name).upload_from_string(data, retry=r, timeout=_TIMEOUT_S),
        )

    def put_file(self, local_path: str, name: str) -> None:
        """Upload a finished local file, then remove the local copy."""
        self._call(
            "upload",
            name,
            lambda r: self._blob(name).upload_from_filename(
                local_path, retry=r, timeout=_TIMEOUT_S
            ),
        )
        os.unlink(local_path)

    def get_file(self, name: str, local_path: str) -> None:
        """Download an object to a local path (atomically)."""
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        tmp = f"{local_path}.tmp-{uuid.uuid4().hex[:8]}"
        self._call(
            "download",
            name,
            lambda r: self._blob(name).download_to_filename(tmp, retry=r, timeout=_TIMEOUT_S),
        )
        os.replace(tmp, local_path)

    def open(self, name: str) -> BinaryIO:
        """The object opened for streaming reads (ranged downloads, retried)."""

        def run(retry: Retry) -> BinaryIO:
            blob = self._blob(name)
            blob.reload(retry=retry)  # a missing object fails here, as FileNotFoundError
            return blob.open("rb", retry=retry)

        return self._call("open", name, run)

    def read_range(self, name: str, start: int, length: int) -> bytes:
        """One ranged download: `length` bytes of the object from `start`."""
        if length <= 0:
            return b""
        return self._call(
            "read",
            name,
            lambda r: self._blob(name).download_as_bytes(
                start=start, end=start + length - 1, retry=r, timeout=_TIMEOUT_S
            ),
        )

    def delete(self, name: str) -> None:
        """Delete the object if present."""
        with contextlib.suppress(FileNotFoundError):
            self._call("delete", name, lambda r: self._blob(name).delete(retry=r))


def open_store(root: str) -> LocalStore | GcsStore:
    """A store for a local folder or a `gs://` prefix."""
    return GcsStore(root) if is_gcs(root) else LocalStore(root)


ORPHAN_AGE_S = 3600  # a dead process's scratch folder untouched this long is removed


@contextlib.contextmanager
def staged_file(store: Store, name: str) -> Iterator[str]:
    """A local path to write `name` to; moved into the store whole when the block succeeds.

    For a local store the temporary file sits beside its target (a rename puts it in place);
    for gs:// it sits in a scratch folder and is uploaded. Either way it is gone afterwards.
    """
    local = isinstance(store, LocalStore)
    folder = store.root if local else make_staging_dir()
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(name)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        store.put_file(tmp, name)
    except OSError as err:  # a full disk, say: one line, and the temp goes below
        raise StorageError(f"could not write {store.url(name)}: {err.strerror or err}") from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if not local:
            shutil.rmtree(folder, ignore_errors=True)


def delete_temps(store: Store, prefix: str = "") -> None:
    """Delete the temporary files (`.<name>...tmp...`) a killed writer left under `prefix`.

    Call it only when no writer of that folder is still running.
    """
    for name in store.list(prefix):
        base = name.rsplit("/", 1)[-1]
        if base.startswith(".") and ".tmp" in base:
            store.delete(name)


def make_staging_dir(prefix: str = "satx-") -> str:
    """A fresh local scratch folder named after this process (the caller removes it).

    A process killed with SIGKILL cannot remove its scratch folder, and make_records may have
    mirrored a whole gs:// input there; so this first removes folders with the same prefix
    whose process is gone and which nobody has touched for an hour.
    """
    _remove_orphans(prefix)
    return tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _remove_orphans(prefix: str) -> None:
    now = time.time()
    for entry in os.scandir(tempfile.gettempdir()):
        pid = entry.name[len(prefix) :].split("-", 1)[0]
        if not (entry.name.startswith(prefix) and pid.isdigit()):
            continue
        with contextlib.suppress(OSError):
            stale = now - entry.stat(follow_symlinks=False).st_mtime > ORPHAN_AGE_S
            if entry.is_dir(follow_symlinks=False) and stale and not _process_alive(int(pid)):
                shutil.rmtree(entry.path, ignore_errors=True)
