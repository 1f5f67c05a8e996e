"""A domain's serial console log, read back on the host's worker: its last lines, as text.

No libvirt here: the driver finds the log's path in the domain XML and hands it over.
"""

import re
from pathlib import Path

# A console tail is small: the last lines of a boot fit well inside this many bytes.
_READ_BYTES = 64 * 1024
# Terminal escapes (colours, cursor moves) and other control characters but tab.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]")


def tail(path: str, lines: int) -> str:
    """The last `lines` non-blank lines of the log at `path`, or why there are none."""
    log = Path(path)
    try:
        with log.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - _READ_BYTES))
            data = handle.read()
    except FileNotFoundError:
        return f"no console log: {path} does not exist"
    except OSError as err:
        return f"no console log: cannot read {path} ({err.strerror})"
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    kept = [line.rstrip() for line in _ESCAPES.sub("", text).split("\n") if line.strip()]
    if not kept:
        return f"no console log: {path} is empty (the guest printed nothing on its console)"
    return "\n".join(kept[-lines:])
