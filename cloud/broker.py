"""kombu's filesystem transport with atomic writes: the broker that needs no server.

The stock transport creates a message file and then writes into it, so a worker polling
the folder can take the file while it is still empty and die on the JSON it reads. Here
a message is written under a name no queue matches, then renamed into place (atomic on
one filesystem), so a reader only ever sees whole messages.
"""

import os
import uuid
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

SCHEME = "atomicfs"


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        folder = self.data_folder_out
        final = os.path.join(folder, f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg")
        partial = os.path.join(folder, f".partial-{uuid.uuid4()}")
        with open(partial, "wb") as handle:
            handle.write(str_to_bytes(dumps(payload)))
        os.replace(partial, final)


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES.setdefault(SCHEME, "cloud.broker:Transport")
