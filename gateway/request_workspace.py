"""The workspace of a /v1/messages request, from an in-process TTL cache (the database only on a miss).

The workspace is the one named by the ``x-lynkr-workspace`` header, else the key's default
(``workspace.selectors.workspace_resolve``: the key's default grant, the user's, a team's, else the only workspace
the caller may use). Its policy decides whether the gateway runs its tools for the request
(``tool_execution_mode``, gateway/toolloop.py) and whether the request's turn is stored (``record_transcripts``).

Every /v1/messages request asks, so the answer is cached per (key id, header value) for ``LYNKR_KEY_CACHE_TTL``
seconds like the key itself (gateway/auth.py): a request costs a dict lookup, and a grant or policy change made
in admin applies everywhere within that time. Refusals are cached too, so a client that names a workspace it may
not use costs one query per TTL.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.db import db_async
from gateway.errors import PermissionDeniedError
from gateway.selectors import KeyInfo
from gateway.ttlcache import TtlCache
from workspace.info import WorkspaceInfo
from workspace.selectors import WorkspaceUnavailable, workspace_resolve

WORKSPACE_HEADER = "x-lynkr-workspace"

# (key id, requested name) -> (workspace or None, refusal message or "")
_cache: TtlCache[tuple[int, str], tuple[WorkspaceInfo | None, str]] = TtlCache()


def _lookup_sync(*, key: KeyInfo, requested: str) -> tuple[WorkspaceInfo | None, str]:
    try:
        info = workspace_resolve(user_id=key.user_id, group_ids=key.group_ids, api_key_id=key.id, requested=requested)
    except WorkspaceUnavailable as exc:
        # Without the header, "no workspace" (or several and no default) just means none for this request; a
        # named workspace the caller may not use is refused (reported exactly like one that does not exist).
        return None, str(exc) if requested else ""
    return info, ""


async def request_workspace(key: KeyInfo, headers: Mapping[str, str]) -> WorkspaceInfo | None:
    """The request's workspace, or None when the caller has none. Raises PermissionDeniedError (403) when the
    ``x-lynkr-workspace`` header names a workspace the caller may not use."""
    requested = (headers.get(WORKSPACE_HEADER) or "").strip()
    info, refusal = await _cache.get((key.id, requested), lambda: db_async(_lookup_sync)(key=key, requested=requested))
    if refusal:
        raise PermissionDeniedError(refusal)
    return info


def request_workspace_cache_clear() -> None:
    _cache.clear()
