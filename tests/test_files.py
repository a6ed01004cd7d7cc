"""Atomic replacement of files (cosmic_rays.files), used for data sets, lenses, notebooks."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cosmic_rays.files import replaced_atomically

REPOSITORY = Path(__file__).resolve().parent.parent


def current_umask():
    umask = os.umask(0)
    os.umask(umask)
    return umask


def test_new_file_gets_the_usual_mode_and_no_temporary_stays(tmp_path):
    path = tmp_path / "maps.npz"
    with replaced_atomically(path) as stream:
        stream.write(b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()
    assert [p.name for p in tmp_path.iterdir()] == ["maps.npz"]


def test_text_mode_writes_the_text_as_given(tmp_path):
    path = tmp_path / "notebook.ipynb"
    with replaced_atomically(path, "w", encoding="utf-8", newline="\n") as stream:
        stream.write('{\n  "µ": 1\n}\n')
    assert path.read_bytes() == '{\n  "µ": 1\n}\n'.encode()


def test_failure_while_writing_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "maps.npz"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with replaced_atomically(path) as stream:
            stream.write(b"half of the new")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["maps.npz"]


def test_only_write_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="expected 'wb' or 'w'"):
        with replaced_atomically(tmp_path / "x", "a"):
            pass


def test_sigterm_while_writing_leaves_no_temporary(tmp_path):
    # Python's default SIGTERM ends the process without clean-up; the command lines
    # install remove_temporaries_on_sigterm so that `kill` and `timeout` leave no file.
    script = (
        "import os, signal, sys\n"
        "from cosmic_rays.files import remove_temporaries_on_sigterm, "
        "replaced_atomically\n"
        "remove_temporaries_on_sigterm()\n"
        "with replaced_atomically(sys.argv[1]) as stream:\n"
        "    stream.write(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    signal.pause()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "maps.npz")],
        cwd=REPOSITORY,
        timeout=60,
    )
    assert result.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
