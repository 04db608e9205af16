"""Tiles from an HTTP(S) tile service: XYZ, TMS (`{-y}`), quadkey or WMS (`{bbox}`) templates.

urllib3 rather than httpx or requests: its `PoolManager` is documented thread-safe and pools
connections per host, which is what `--fetch_threads` threads sharing one client need; its
`Retry` implements exponential backoff with jitter and `Retry-After`, and it is already in
the dependency tree (google-cloud-storage). Each attempt goes through the shared rate cap, so
retries count against `--max_rps` too.

Per tile: 200 with an image body -> the bytes; 404, 204 or an empty 200 -> no imagery
(`missing`); a 200 that is not an image (an HTML quota page) -> `not_an_image`; timeouts,
connection errors, 429 and 5xx -> retried `--fetch_retries` times, then `fetch_failed`;
401/403 stop the run (every other tile would fail the same way). Secrets in the URL or the
headers never reach a message: every detail names the URL through `secrets.redact_url`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import mercantile
import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError
from urllib3.util.retry import Retry

import satx
from satx.config import SourceConfig
from satx.errors import InputError
from satx.io import failpoints, secrets
from satx.tiles.base import MISSING, Errors
from satx.tiles.formats import sniff
from satx.tiles.template import TileTemplate

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
NO_IMAGERY_STATUSES = frozenset({204, 404})
MAX_WAIT_S = 60.0  # the longest one wait between attempts may be, whatever Retry-After says


class _BoundedRetry(Retry):
    """urllib3's Retry with Retry-After capped at MAX_WAIT_S (a bounded budget)."""

    def get_retry_after(self, response: urllib3.BaseHTTPResponse) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else min(after, MAX_WAIT_S)


class _RateLimiter:
    """At most `rate` calls of `wait()` per second over all threads (0: no cap)."""

    def __init__(self, rate: float):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until this caller's slot."""
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        if slot > now:
            time.sleep(slot - now)


class HttpTiles:
    """A tile service behind a URL template (see the module docstring)."""

    kind = "http"

    def __init__(self, config: SourceConfig):
        try:
            url = secrets.expand_env(config.tiles, "--tiles")
            headers = dict(secrets.parse_header(h) for h in config.tile_header)
        except (KeyError, ValueError) as err:
            raise InputError(str(err.args[0])) from err
        secrets.register_url(url)
        self.template = TileTemplate(url, config.tile_subdomains)
        self.description = secrets.redact_url(config.tiles)
        self.retry = _BoundedRetry(
            total=config.fetch_retries,
            backoff_factor=0.25,
            backoff_jitter=0.25,
            backoff_max=MAX_WAIT_S,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.pool = urllib3.PoolManager(
            num_pools=16,
            maxsize=config.fetch_threads,
            block=True,
            headers={"User-Agent": f"satx/{satx.__version__}", **headers},
            timeout=urllib3.Timeout(connect=config.fetch_timeout, read=config.fetch_timeout),
            # redirects are followed (a service may move http -> https or to a CDN); every
            # other retry is ours, below, so that each attempt passes the rate limiter
            retries=Retry(total=None, connect=0, read=0, redirect=5, status=0, other=0),
        )
        self.limiter = _RateLimiter(config.max_rps)
        self._threads = ThreadPoolExecutor(config.fetch_threads, thread_name_prefix="satx-fetch")

    def fetch(self, tile: mercantile.Tile) -> tuple[bytes | None, tuple[str, str] | None]:
        """One tile: its bytes, or None and `(reason, detail)`."""
        url = self.template.location(tile)
        shown = secrets.redact_url(url)
        retry = self.retry
        while True:
            self.limiter.wait()
            failpoints.hit("fetch.request")
            try:
                try:
                    response = self.pool.request("GET", url, preload_content=True)
                except MaxRetryError as wrapped:  # urllib3 wraps the error it gave up on
                    raise (wrapped.reason or wrapped) from None
            except HTTPError as err:  # timeouts, refused or reset connections
                try:
                    retry = retry.increment("GET", url, error=err)
                except MaxRetryError:
                    return None, ("fetch_failed", f"{shown}: {type(err).__name__} (retries spent)")
                retry.sleep()
                continue
            status, body = response.status, response.data
            if status in RETRY_STATUSES:
                try:
                    retry = retry.increment("GET", url, response=response)
                except MaxRetryError:
                    return None, ("fetch_failed", f"{shown}: HTTP {status} (retries spent)")
                retry.sleep(response)
                continue
            return self._outcome(status, body, response.headers.get("Content-Type", ""), shown)

    def _outcome(
        self, status: int, body: bytes, content_type: str, shown: str
    ) -> tuple[bytes | None, tuple[str, str] | None]:
        if status in (401, 403):
            raise InputError(
                f"the tile service refused {shown} (HTTP {status}): check the token or "
                "--tile_header"
            )
        if status in NO_IMAGERY_STATUSES or (status == 200 and not body):
            return None, (MISSING, f"no imagery: HTTP {status} from {shown}")
        if status != 200:
            return None, ("fetch_failed", f"{shown}: HTTP {status}")
        if sniff(body) is None:
            kind = content_type.split(";")[0] or "no content type"
            return None, ("not_an_image", f"{shown}: HTTP 200 with {kind}, {len(body)} bytes")
        return body, None

    def read(self, tiles: Sequence[mercantile.Tile]) -> tuple[list[bytes | None], Errors]:
        """Fetch tiles concurrently (`--fetch_threads`)."""
        results = list(self._threads.map(self.fetch, tiles))
        errors = {i: err for i, (_, err) in enumerate(results) if err is not None}
        return [data for data, _ in results], errors

    def close(self) -> None:
        """Stop the threads and close the connections."""
        self._threads.shutdown()
        self.pool.clear()
