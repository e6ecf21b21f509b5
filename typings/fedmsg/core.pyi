from typing import Any

import zmq

class FedMsgContext:
    context: zmq.Context[zmq.Socket[bytes]]
    publisher: zmq.Socket[bytes] | None
    def __init__(self, **config: Any) -> None: ...
    def publish(
        self,
        topic: str | None = None,
        msg: Any = None,
        modname: str | None = None,
        pre_fire_hook: Any = None,
        **kw: Any,
    ) -> None: ...
    def destroy(self) -> None: ...
