"""Simulated sky maps of ultra-high-energy cosmic rays for the DGCNN course.

Modules, one idea each:

- ``galactic_field``: the Jansson-Farrar 2012 regular galactic magnetic field.
- ``propagation``: the relativistic Lorentz-force integration (backtracking).
- ``lens``: per-rigidity deflection maps on a HEALPix grid, cached on disk.
- ``skymaps``: energies, sources and isotropic background: the sky maps themselves.
- ``dataset``: reading, checking, simulating or downloading ``cr_sphere.npz``.
- ``plotting``: sky maps and neighbour graphs in the Hammer projection.
- ``files``: writing a file through a temporary one, so no half file is ever left.
"""

import os
from pathlib import Path

#: Where generated data (sky maps, lens caches) goes: ``$COSMIC_RAYS_DATA`` if set,
#: else ``data/`` beside this package (the repository root on a clone or on Colab).
DATA_DIR = Path(
    os.environ.get("COSMIC_RAYS_DATA", Path(__file__).resolve().parent.parent / "data")
)
