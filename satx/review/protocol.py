"""The review server's strict reading of requests: JSON fields, ids, the token cookie.

Every rule here exists because a looser one was exploited (see BUILD_NOTES, "Review server"):

- bodies are waitress's: read whole before the app runs (at most `MAX_BODY`, else 413), so no
  body byte is ever parsed as the next request; a GET or HEAD carries no body at all;
- a JSON body is one object whose fields have the types the API names: `"id": true` or
  `190.9` is not tile 1 or 190, and `NaN`/`Infinity` are not JSON;
- the cookie is named per server and holds a key derived from the token for that server only:
  cookies ignore ports, so every service on the host receives them; the Cookie header is read
  pair by pair, so another site's odd cookie cannot hide ours.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import socket
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

MAX_BODY = 65536
TILE_PATH = re.compile(r"/tiles/(\d{1,12})/(-1|0|1)/(-1|0|1)")
MAX_ID = 2**63 - 1  # SQLite's INTEGER
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
ANY_ADDRESS = ("0.0.0.0", "::", "")
# A name starts with a letter or digit: a leading = + - @ is a formula in a spreadsheet.
REVIEWER = re.compile(r"\w[\w .@+-]{0,63}")


class BadRequest(Exception):
    """A request the server refuses: its status and the one line it answers with."""

    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Request:
    """What the app reads of one request, which waitress has received whole."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, Any]  # the WSGI environ
    body: bytes

    @classmethod
    def from_environ(cls, environ: Mapping[str, Any]) -> Request:
        """The request of a WSGI environ (its body read: waitress buffered it)."""
        length = environ.get("CONTENT_LENGTH") or "0"
        body = environ["wsgi.input"].read(int(length)) if length.isdigit() else b""
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        return cls(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), query, environ, body)

    def header(self, name: str, default: Any = "") -> Any:
        """A request header by its name (any case), or `default`."""
        key = name.upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
        return self.headers.get(key, default)


def cookie_value(header: str, name: str) -> str:
    """The value of cookie `name` in a Cookie header, read leniently.

    `http.cookies` gives up on the whole header at the first cookie it cannot parse
    (`prefs={"lang":"en"}`, `name=José`), so one odd cookie of another site on the same host
    locked reviewers out. Here each `;`-separated pair stands alone.
    """
    for pair in header.split(";"):
        key, sep, value = pair.strip().partition("=")
        if sep and key.strip() == name:
            return value.strip().strip('"')
    return ""


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as one JSON object (an empty body is `{}`)."""
    try:
        body = json.loads(raw or b"{}", parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(HTTPStatus.BAD_REQUEST, "the body is a JSON object")
    return body


def tile_id(value: Any) -> int:
    """A tile id from JSON: an integer (not a bool or float) in SQLite's range."""
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise BadRequest(HTTPStatus.BAD_REQUEST, '"id" is a tile id (a positive integer)')
    return value


def query_id(value: str) -> int | None:
    """A tile id from a query string, or None when it is not one."""
    if value.isascii() and value.isdigit() and len(value) <= 19 and 0 < int(value) <= MAX_ID:
        return int(value)
    return None


def text_field(body: Mapping[str, Any], name: str, default: str | None = None) -> str:
    """A string field of a JSON body."""
    value = body.get(name, default)
    if not isinstance(value, str):
        raise BadRequest(HTTPStatus.BAD_REQUEST, f'"{name}" is a string')
    return value


def reviewer_name(value: str) -> str:
    """A reviewer's name: 1-64 letters, digits, spaces or .@+-_, starting with a letter or digit."""
    name = value.strip()
    if not REVIEWER.fullmatch(name):
        raise BadRequest(
            HTTPStatus.BAD_REQUEST,
            "reviewer: 1-64 letters, digits, spaces or .@+-_, starting with a letter or digit",
        )
    return name


def cookie_name(port: int) -> str:
    """The token cookie's name for the server on `port` (cookies ignore ports)."""
    return f"satx_review_{port}"


def cookie_key(token: str, port: int) -> str:
    """What the cookie holds: a key good for this server only, never the token itself."""
    return hmac.new(
        token.encode(), f"satx-review-cookie:{port}".encode(), hashlib.sha256
    ).hexdigest()


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def page_urls(host: str, port: int) -> list[str]:
    """Addresses people can open: the machine's own addresses when bound to all of them."""
    if host not in ANY_ADDRESS:
        return [f"http://{_bracketed(host)}:{port}/"]
    names = {socket.gethostname()}
    try:
        family = socket.AF_INET if host == "0.0.0.0" else 0
        for info in socket.getaddrinfo(socket.gethostname(), None, family, socket.SOCK_STREAM):
            address = str(info[4][0])
            if not is_loopback(address):
                names.add(address)
    except OSError:
        pass  # no resolver: the host name alone
    return [f"http://{_bracketed(name)}:{port}/" for name in sorted(names)]
