"""The embedded broker: kombu's filesystem transport, with each message written atomically.

Why: kombu's filesystem transport creates a message file under its final name and only then
writes the message into it. A worker polling the folder in between moves the still-empty file
away, cannot decode it and stops ("Unrecoverable error: JSONDecodeError"); the message is lost
with it, and the worker is gone until someone restarts it. Any poll interval allows it; at 20 ms
(evalsite.env) it stopped the worker in 2 of 8 throughput bench runs, at the burst of messages a
run's chunks are. Here a message is written under a name no consumer reads and renamed into
place, so a consumer only ever lists whole messages.

Settings select this class for `filesystem://` (CELERY_BROKER_TRANSPORT); Redis is unaffected.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # kombu names the second argument `message` in its base class, `payload` in this one.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Put a message onto `queue`: written to a hidden name, then renamed to kombu's.

        The final name is the one kombu gives (`<ms>_<uuid>.<queue>.msg`: consumers take files in
        name order); the hidden one (`.<uuid>.tmp`) matches no queue, so neither consumers nor the
        queue-size count see a message before it is complete.
        """
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = os.path.join(self.data_folder_out, f".{uuid.uuid4()}.tmp")
        try:
            with open(hidden, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(hidden, final)
        except OSError as exc:
            try:
                os.unlink(hidden)
            except OSError:
                pass
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
