"""What one authenticated WebDAV request carries into the WSGI side."""

from __future__ import annotations

from dataclasses import dataclass

from minidropbox.api.context import AppContext
from minidropbox.dav.bridge import LoopBridge
from minidropbox.service.accounts import Principal


@dataclass(frozen=True)
class DavSession:
    ctx: AppContext
    principal: Principal
    bridge: LoopBridge
