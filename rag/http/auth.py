"""The API's bearer token: read from the environment only, compared in constant time, never logged; and the
rule that the API is not served beyond this machine without one."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import Depends
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


def requires(token: str) -> Callable[..., None]:
    """A FastAPI dependency that lets a request through only with ``Authorization: Bearer <token>``."""
    expected = token.encode()

    def check(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if credentials is None:
            raise ApiError(401, "missing API token", type="authentication_error",
                           hint=f"send the header 'Authorization: Bearer <token>' with the value of {TOKEN_ENV} "
                                "on the server", headers={"WWW-Authenticate": "Bearer"})
        if not secrets.compare_digest(credentials.credentials.encode(), expected):
            raise ApiError(401, "wrong API token", type="authentication_error",
                           hint=f"use the value of {TOKEN_ENV} on the server", headers={"WWW-Authenticate": "Bearer"})

    return check
