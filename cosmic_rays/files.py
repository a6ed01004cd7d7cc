"""Writing files so that a reader sees the old file or the whole new one, never half.

Used by the simulator (data sets, lenses) and by tools/make_exercise.py (notebooks).
"""

import os
import secrets
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replaced_atomically(path, mode="wb", **open_options):
    """Open a new file beside ``path`` for writing; it replaces ``path`` once all is written.

    The temporary file is hidden (``.name.<random>.tmp``) in the same folder, so the final
    rename is atomic. If the body raises, or the process is interrupted, the temporary
    file is removed and ``path`` is left as it was. The file is created with the mode any
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
