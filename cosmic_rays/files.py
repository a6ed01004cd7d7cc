"""Writing files so that a reader sees the old file or the whole new one, never half.

Used by the simulator (data sets, lenses) and by tools/make_exercise.py (notebooks).
"""

import os
import secrets
import signal
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(path, mode="wb", **open_options):
    """Open a new file beside ``path`` for writing; it replaces ``path`` once all is written.

    The temporary file is hidden (``.name.<random>.tmp``) in the same folder, so the final
    rename is atomic. If the body raises, or the process is interrupted (Ctrl-C, or a
    SIGTERM once ``remove_temporaries_on_sigterm`` has been called), the temporary file
    is removed and ``path`` is left as it was. The file is created with the mode any
    new file gets (0666 less the umask), not the owner-only mode of ``tempfile.mkstemp``.

    Parameters
    ----------
    path : str or Path
    mode : {"wb", "w"}
    **open_options
        Passed to ``open`` (``encoding``, ``newline`` for text).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode {mode!r}: expected 'wb' or 'w'")
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(descriptor, mode, **open_options) as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_temporaries_on_sigterm():
    """Let SIGTERM (``kill``, ``timeout``) end the program as an exception does.

    Python's default for SIGTERM ends the process at once, without the clean-up of
    ``replaced_atomically``; raising SystemExit (status 143, as a killed process) runs it.
    For command-line entry points; call it from the main thread.
    """

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
