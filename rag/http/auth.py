"""The API's bearer token: read from the environment only, compared in constant time, never logged; and the
rule that the API is not served beyond this machine without one. When the page has a login (RAG_APP_USER and
RAG_APP_PASSWORD), the API takes that login too (HTTP Basic), so a login never leaves the documents open through
the API."""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag import ConfigError
from rag.http.errors import ApiError

TOKEN_ENV = "RAG_API_TOKEN"
NEW_TOKEN = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def api_token(environ: Mapping[str, str] | None = None) -> str | None:
    """The token clients must send, from RAG_API_TOKEN; None when it is unset or blank."""
    environ = os.environ if environ is None else environ
    return environ.get(TOKEN_ENV, "").strip() or None


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach: localhost, 127.0.0.0/8, ::1."""
    host = host.strip().strip("[]").lower()
    if host in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None) -> None:
    """Refuse to serve the API on ``host`` without a token unless ``host`` is a loopback address."""
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"the HTTP API would be open to anyone who can reach {host}: {TOKEN_ENV} is not set",
            hint=f"set {TOKEN_ENV} to a long random secret (export {TOKEN_ENV}=$({NEW_TOKEN})) and send it as "
                 f"'Authorization: Bearer <token>', or bind app.host to 127.0.0.1")


_bearer = HTTPBearer(auto_error=False, scheme_name="token", description=f"the value of {TOKEN_ENV} on the server")


def requires(token: str | None, login: tuple[str, str] | None = None) -> Callable[..., None]:
    """A FastAPI dependency that lets a request through only with ``Authorization: Bearer <token>`` or, when
    ``login`` (user, password) is given, with that login as HTTP Basic credentials."""
    if token is None and login is None:
        raise ValueError("requires() needs a token or a login")
    expected = token.encode() if token else None
    how = " or ".join(([f"'Authorization: Bearer <token>' with the value of {TOKEN_ENV} on the server"] if token
                       else []) + (["the page's login as HTTP Basic credentials"] if login else []))
    challenge = {"WWW-Authenticate": "Bearer" if token else 'Basic realm="PDF chat"'}

    def check(request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        basic = _basic_credentials(request) if login is not None else None
        if bearer is not None and bearer.scheme.lower() == "bearer" and expected is not None:
            if secrets.compare_digest(bearer.credentials.encode(), expected):
                return
            raise ApiError(401, "wrong API token", type="authentication_error",
                           hint=f"use the value of {TOKEN_ENV} on the server", headers=challenge)
        if basic is not None and login is not None:
            user_ok = secrets.compare_digest(basic[0].encode(), login[0].encode())
            password_ok = secrets.compare_digest(basic[1].encode(), login[1].encode())
            if user_ok and password_ok:
                return
            raise ApiError(401, "wrong user name or password", type="authentication_error",
                           hint="use the page's login (RAG_APP_USER / RAG_APP_PASSWORD on the server)",
                           headers=challenge)
        raise ApiError(401, "missing API token" if token else "login required", type="authentication_error",
                       hint=f"send {how}", headers=challenge)

    return check


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic ...`` header; None without one or when it is malformed."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
