"""Which scenes `--tiles` names, and how each one is reached (`satx.tiles.scenes` cuts them).

- A GeoTIFF/COG or GDAL VRT: a path, `gs://` (GDAL's `/vsigs/`; the GCS emulator when
  `STORAGE_EMULATOR_HOST` is set) or `http(s)://` (`/vsicurl/`, range requests); a folder (the
  scenes directly in it; a folder of z/x/y tiles is a template, not scenes) or a glob.
- A STAC Item or ItemCollection JSON (local, gs:// or a URL): each item's `--stac_asset`,
  newest `datetime` first.

Remote requests (the STAC JSON, a scene's ETag, GDAL's range reads) send `--tile_header` and
are retried on 429/5xx and dropped connections, `--fetch_retries` times; `${ENV}` in the URL
is expanded, and URLs and headers reach messages only redacted.
"""

from __future__ import annotations

import functools
import glob
import json
import logging
import math
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import urllib3

import satx
from satx.config import SourceConfig
from satx.errors import InputError
from satx.io import secrets, storage
from satx.io.run_record import file_sha256

log = logging.getLogger(__name__)

SCENE_SUFFIXES = (".tif", ".tiff", ".vrt")
RETRY_STATUSES = (429, 500, 502, 503, 504)


def is_scene_spec(spec: str) -> bool:
    """Does `--tiles` name scenes (rather than a tile template or an archive)?"""
    path = spec.lower().split("?")[0]
    if "{" in spec.replace("${", ""):
        return False
    if path.endswith((*SCENE_SUFFIXES, ".json")):
        return True
    if path.startswith(("http://", "https://", "gs://")):
        return False
    folder = Path(spec).expanduser()
    return any(c in spec for c in "*?[") or (folder.is_dir() and bool(_scene_files(folder)))


def _scene_files(folder: Path) -> list[str]:
    """The scenes directly inside a folder (a folder of z/x/y tiles has none)."""
    return sorted(str(p) for p in folder.iterdir() if p.suffix.lower() in SCENE_SUFFIXES)


@dataclass(frozen=True)
class Scene:
    """One scene: where it is (as given, and as GDAL opens it) and its STAC datetime."""

    href: str
    datetime: str = ""

    @property
    def remote(self) -> bool:
        """Read over the network (gs:// or http(s)://)."""
        return self.href.startswith(("http://", "https://", "gs://"))

    @property
    def gdal_path(self) -> str:
        """The path GDAL opens: gs:// through /vsigs/, URLs through /vsicurl/ (range reads)."""
        if self.href.startswith("gs://"):
            return "/vsigs/" + self.href[len("gs://") :]
        if self.href.startswith(("http://", "https://")):
            return "/vsicurl/" + self.href
        return str(Path(self.href).expanduser())


class Remote:
    """HTTP for the scenes' JSON and HEAD requests: the source's headers, timeout and retries."""

    def __init__(self, config: SourceConfig):
        self.config = config
        try:
            self.headers = dict(secrets.parse_header(h) for h in config.tile_header)
        except (KeyError, ValueError) as err:
            raise InputError(str(err.args[0])) from err
        self.timeout = config.fetch_timeout
        self.retries = urllib3.Retry(
            total=config.fetch_retries,
            backoff_factor=0.25,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "HEAD"}),
            raise_on_status=False,
        )

    @functools.cached_property
    def pool(self) -> urllib3.PoolManager:
        """Connections, opened on first use."""
        agent = {"User-Agent": f"satx/{satx.__version__}"}
        return urllib3.PoolManager(headers={**agent, **self.headers}, retries=self.retries)

    def request(self, method: str, url: str) -> urllib3.BaseHTTPResponse:
        """One request, retried; a status of 400 or more, or no answer, is an InputError."""
        shown = secrets.redact_url(url)
        try:
            answer = self.pool.request(method, url, timeout=self.timeout)
        except urllib3.exceptions.HTTPError as err:
            raise InputError(f"{shown}: cannot reach ({type(err).__name__})") from err
        if answer.status >= 400:
            raise InputError(f"{shown}: HTTP {answer.status}")
        return answer

    def configure_gdal(self) -> None:
        """GDAL's settings for remote scenes, as environment defaults (a user's own win).

        No folder listing; this source's timeout, retries (GDAL's: 429 and 5xx) and headers;
        the GCS emulator when one is set. Set once for the process rather than a `rasterio.Env`
        around every read of every pool thread.
        """
        options = {
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
            "GDAL_HTTP_TIMEOUT": str(math.ceil(self.config.fetch_timeout)),
            "GDAL_HTTP_MAX_RETRY": str(self.config.fetch_retries),
            "GDAL_HTTP_RETRY_DELAY": "0.5",
        }
        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            options.update(CPL_GS_ENDPOINT=emulator.rstrip("/") + "/", GS_NO_SIGN_REQUEST="YES")
        for key, value in options.items():
            os.environ.setdefault(key, value)
        if self.headers:  # this run's own: they replace any earlier run's in this process
            lines = [f"{name}: {value}" for name, value in self.headers.items()]
            os.environ["GDAL_HTTP_HEADERS"] = "\r\n".join(lines)

    def read_text(self, where: str) -> str:
        """A local, gs:// or http(s) text file."""
        if where.startswith(("http://", "https://")):
            return self.request("GET", where).data.decode()
        folder, _, name = where.rpartition("/")
        try:
            return storage.open_store(folder or ".").read_bytes(name).decode()
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"{where}: cannot read ({err})") from err

    def identity(self, scene: Scene) -> dict[str, str]:
        """A local scene's sha256; a remote one's ETag (or size and date), as its server says."""
        if not scene.remote:
            return {"sha256": file_sha256(scene.gdal_path)}
        if scene.href.startswith("gs://"):
            folder, _, name = scene.href.rpartition("/")
            return {"etag": storage.GcsStore(folder).etag(name)}
        headers = self.request("HEAD", scene.href).headers
        size_date = f"{headers.get('Content-Length')}@{headers.get('Last-Modified')}"
        return {"etag": headers.get("ETag") or size_date}


def _stac_scenes(where: str, asset: str, remote: Remote) -> list[Scene]:
    """The `asset` of a STAC Item or of each Item of an ItemCollection, newest first."""
    shown = secrets.redact_url(where)
    try:
        document = json.loads(remote.read_text(where))
    except ValueError as err:
        raise InputError(
            f"--tiles={shown}: not JSON ({err}); give a STAC Item or ItemCollection"
        ) from err
    kind = document.get("type") if isinstance(document, dict) else None
    items = [document] if kind == "Feature" else document.get("features") if kind else None
    if not isinstance(items, list) or not items:
        raise InputError(f"--tiles={shown}: not a STAC Item or ItemCollection (type {kind!r})")
    scenes = []
    for item in items:
        assets = item.get("assets") if isinstance(item, dict) else None
        name = item.get("id", "?") if isinstance(item, dict) else "?"
        if not isinstance(assets, dict) or not isinstance(assets.get(asset), dict):
            have = ", ".join(sorted(assets)) if isinstance(assets, dict) else "none"
            raise InputError(
                f"--tiles={shown}: STAC item {name} has no asset {asset!r} (it has: {have}); "
                "choose one with --stac_asset"
            )
        href = str(assets[asset].get("href", ""))
        if not href:
            raise InputError(f"--tiles={shown}: STAC item {name}'s asset {asset!r} has no href")
        properties = item.get("properties") or {}
        scenes.append(Scene(urllib.parse.urljoin(where, href), str(properties.get("datetime", ""))))
    return sorted(scenes, key=lambda s: s.datetime, reverse=True)  # stable: ties keep order


def open_scenes(config: SourceConfig) -> tuple[Remote, list[Scene]]:
    """The scenes `config.tiles` names, and their remote access, with GDAL set up to read them.

    Every opening of a scene goes through here: GDAL without these settings lists a remote
    scene's folder first (it hung against the loopback file server).
    """
    remote = Remote(config)
    scenes = list_scenes(config, remote)
    remote.configure_gdal()
    return remote, scenes


def list_scenes(config: SourceConfig, remote: Remote | None = None) -> list[Scene]:
    """The scenes `config.tiles` names, in the order that decides overlaps."""
    try:
        spec = secrets.expand_env(config.tiles, "--tiles")
    except KeyError as err:
        raise InputError(str(err.args[0])) from err
    secrets.register_url(spec)
    path = spec.split("?")[0].lower()
    if path.endswith(".json"):
        return _stac_scenes(spec, config.stac_asset, remote or Remote(config))
    if path.startswith(("http://", "https://", "gs://")):
        return [Scene(spec)]
    local = Path(spec).expanduser()
    if local.is_dir():
        found = _scene_files(local)
    elif any(c in spec for c in "*?["):
        found = sorted(p for p in glob.glob(str(local), recursive=True) if os.path.isfile(p))
    else:
        if not local.is_file():
            raise InputError(f"--tiles={spec}: no such scene file")
        found = [str(local)]
    if not found:
        raise InputError(f"--tiles={spec}: no GeoTIFF/COG or VRT scene there")
    return [Scene(p) for p in found]


@functools.cache
def _gdal_library() -> Any:
    """The GDAL library rasterio loaded (its wheel's copy, else the system's), or None."""
    import ctypes
    import ctypes.util

    import rasterio

    bundled = glob.glob(os.path.join(os.path.dirname(rasterio.__file__) + ".libs", "libgdal*"))
    found = bundled[0] if bundled else ctypes.util.find_library("gdal")
    try:
        return ctypes.CDLL(found) if found else None
    except OSError:
        return None


def forget_remote_regions(gdal_path: str) -> None:
    """Drop GDAL's cached regions of one remote file (`VSICurlPartialClearCache`).

    GDAL keeps a response cut mid-body in its region cache and fails that block for the rest
    of the process. rasterio does not expose the call, so it is made in the GDAL library
    rasterio loaded; without one (an unusual build), a retry reads what GDAL kept.
    """
    library = _gdal_library()
    if library is None or not hasattr(library, "VSICurlPartialClearCache"):
        log.warning("cannot clear GDAL's cache of %s: a retry may fail again", gdal_path)
        return
    library.VSICurlPartialClearCache(gdal_path.encode())
