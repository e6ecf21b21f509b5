"""The demo's own IRC server (:mod:`.server`; line safety in :mod:`.wire`, state in
:mod:`.network`, commands in :mod:`.channels` and :mod:`.messages`)."""

from .server import DemoIrcServer
from .wire import MAX_LINE, irc_lower

__all__ = ["MAX_LINE", "DemoIrcServer", "irc_lower"]
