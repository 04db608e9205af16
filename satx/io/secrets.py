"""Keep tokens out of everything satx writes: logs, manifests, run records, errors files.

Tile providers put credentials in URLs (`?access_token=...`, `key=`, `apikey=`, `signature=`) or
in request headers. Every value that is or may be a secret is registered here when a tile
source is opened, and `scrub` replaces registered values (and anything in a secret-looking URL
parameter) with `REDACTED`. The writers of text that may quote a source (JSON run records and
manifests, errors CSVs, log records, the CLI's error line) pass it through `scrub`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import urllib.parse
from collections.abc import Mapping

REDACTED = "REDACTED"
# URL query parameters whose values are credentials (matched as a part of the name: api_key,
# X-Amz-Signature, access_token, ...).
_SECRET_NAME = re.compile(
    r"token|key|sig|secret|passw|auth|credential|session|client_id", re.IGNORECASE
)
_PARAM = re.compile(r"([?&;][\w.\-]*=)([^&#\s\"'<>]*)")
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.\-]*://)[^/@\s\"']+@", re.IGNORECASE)
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MIN_LENGTH = 4  # shorter values would scrub ordinary text

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(value: str) -> None:
    """Treat `value` as a secret from now on (in this process)."""
    global _pattern
    value = value.strip()
    if len(value) < _MIN_LENGTH or value in _secrets:
        return
    with _lock:
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)  # a secret inside a longer one
        _pattern = re.compile("|".join(map(re.escape, ordered)))


def _secret_param(match: re.Match[str]) -> str:
    name = match.group(1)[1:-1]
    if _SECRET_NAME.search(name) and match.group(2):
        register(urllib.parse.unquote(match.group(2)))
        return f"{match.group(1)}{REDACTED}"
    return match.group(0)


def scrub(text: str) -> str:
    """`text` with secrets replaced by REDACTED.

    Registered values, secret-looking URL parameters and URL passwords are all replaced.
    """
    if not text:
        return text
    text = _USERINFO.sub(rf"\g<1>{REDACTED}@", text)
    text = _PARAM.sub(_secret_param, text)
    pattern = _pattern
    return pattern.sub(REDACTED, text) if pattern is not None else text


def redact_url(url: str) -> str:
    """A URL or template safe to print (registers the secrets it held)."""
    return scrub(url)


def register_url(url: str) -> None:
    """Register the secrets a URL or template carries in its query or user info."""
    scrub(url)
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        register(urllib.parse.unquote(parts.password))


def expand_env(text: str, what: str) -> str:
    """`${NAME}` replaced by the environment variable's value, which becomes a secret.

    Raises:
        KeyError: naming the variable, when it is not set.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise KeyError(f"{what} uses ${{{name}}} but the environment variable {name} is unset")
        register(os.environ[name])
        return os.environ[name]

    return _ENV.sub(value, text)


def parse_header(spec: str) -> tuple[str, str]:
    """`'Name: value'` (with `${ENV}` expanded) -> (name, value); the value becomes a secret.

    A scheme word (`Bearer`, `Basic`, `Token`) before the credential is kept apart, so the bare
    credential is scrubbed too when something prints it alone.
    """
    name, sep, value = spec.partition(":")
    if not sep or not name.strip() or not value.strip():
        raise ValueError(f"--tile_header expects 'Name: value', got {scrub(spec)!r}")
    value = expand_env(value.strip(), f"--tile_header {name.strip()}")
    register(value)
    scheme, _, credential = value.partition(" ")
    if credential and scheme.isalpha():
        register(credential)
    return name.strip(), value


_SECRET_FLAG = re.compile(r"token|secret|passw|credential|api_?key", re.IGNORECASE)


def register_args(values: Mapping[str, object]) -> None:
    """Register every secret a command line carries, before the run writes or logs anything.

    `--tile_header` values, flags named like a credential (`--token`), secret-looking URL
    parameters and passwords in any URL, and `${ENV}` expansions; values that do not parse are
    left to their stage, which refuses them (scrubbed) in one line.
    """
    for name, value in values.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if not isinstance(item, str) or not item:
                continue
            with contextlib.suppress(ValueError, KeyError):
                if name == "tile_header":
                    parse_header(item)
                elif _SECRET_FLAG.search(name):
                    register(item)
                elif "${" in item:
                    register_url(expand_env(item, f"--{name}"))
                else:
                    register_url(item)


def scrub_logs() -> None:
    """Make every log record in this process carry its message scrubbed (idempotent).

    A record factory rather than a handler filter: it covers records of every logger and every
    handler, including ones added later. The message is formatted when the record is made,
    which logging does only for records that pass the logger's level.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "satx_scrubs", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.msg, record.args = scrub(record.getMessage()), None
        return record

    factory.satx_scrubs = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
