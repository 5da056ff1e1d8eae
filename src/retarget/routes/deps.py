"""Small FastAPI dependencies: the lifespan's state and who is calling."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from retarget.api_keys import Principal, Role, key_hash
from retarget.asgi import HotRequest
from retarget.catalog import Catalog, LiveCatalog
from retarget.clock import Clock
from retarget.errors import Unauthorized
from retarget.settings import Settings
from retarget.store.users import UserStore

_bearer = HTTPBearer(
    auto_error=False,
    description="The admin token (RETARGET_ADMIN_TOKEN), an advertiser key or a publisher key.",
)


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """401 without a known key; which key it is decides the scope (checked per route: 403)."""
    if credentials is None:
        raise Unauthorized("missing bearer token", field="Authorization")
    return principal_for(request, credentials.credentials)


# Authorization header -> (the catalog and settings it was checked against, who it is).
# Only keys that passed are kept; a new catalog (a key revoked) or settings check again.
_checked: dict[str, tuple[Catalog, Settings, Principal]] = {}


def bearer_principal(request: HotRequest) -> Principal:
    """The same check without FastAPI's dependency machinery, for the hot path, where a
    publisher sends the same key with every decision: it is checked once per catalog."""
    header = request.header(b"authorization") or ""
    state = request.state
    catalog, settings = state.catalog.current, state.settings
    found = _checked.get(header)
    if found is not None and found[0] is catalog and found[1] is settings:
        return found[2]
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token", field="Authorization")
    principal = principal_for(request, token.strip())
    if len(_checked) >= 1024:
        _checked.clear()
    _checked[header] = (catalog, settings, principal)
    return principal


def principal_for(request: Request | HotRequest, token: str) -> Principal:
    admin_token = request.state.settings.admin_token.get_secret_value()
    if hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal(Role.ADMIN)
    stored = request.state.catalog.current.api_keys.get(key_hash(token))
    if stored is None:
        raise Unauthorized("invalid bearer token", field="Authorization")
    return Principal(stored.role, stored.owner_id)


def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> None:
    principal.require_admin()


async def fresh_catalog(request: Request) -> Catalog:
    """The catalog, reloaded first if another worker changed the configuration (admin reads)."""
    live: LiveCatalog = request.state.catalog
    await live.refresh_if_changed()
    return live.current


Admin = Depends(require_admin)
Caller = Annotated[Principal, Depends(authenticate)]
FreshCatalog = Annotated[Catalog, Depends(fresh_catalog)]


def get_settings(request: Request) -> Settings:
    return request.state.settings


def get_live_catalog(request: Request) -> LiveCatalog:
    return request.state.catalog


def get_users(request: Request) -> UserStore:
    return request.state.users


def get_clock(request: Request) -> Clock:
    return request.state.clock


LiveCatalogDep = Annotated[LiveCatalog, Depends(get_live_catalog)]
UsersDep = Annotated[UserStore, Depends(get_users)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
