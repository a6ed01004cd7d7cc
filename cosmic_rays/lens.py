"""Galactic lens: where each observed direction came from, per rigidity bin.

A cosmic ray arriving at Earth from direction p with rigidity R entered the Galaxy from
direction d = lens_R(p), found by backtracking the antiparticle through the regular field
(``cosmic_rays.propagation.backtrack``). The lens stores d for the centre of every pixel
of a HEALPix grid (NESTED ordering) and for a few log-spaced rigidity bins.

Sampling through the lens respects Liouville's theorem: the flux along a trajectory is
conserved, so an observed pixel p receives from a source at extragalactic direction s the
flux that the source sends along lens_R(p). With the random-field smearing modelled as a
von Mises-Fisher spread around s, the weight of pixel p is

    w_p(s) = Omega_pix x kappa / (2 pi (1 - exp(-2 kappa)))
             x exp(kappa (lens_R(p) . s - 1)),

with kappa = 1 / sigma^2. The sum of w_p over pixels is the source's magnification at
that rigidity (1 on average over the sky, 0 for a source the field hides). Mapping a
sampled extragalactic direction to the nearest lens image instead would weight pixels by
the inverse Jacobian of the lens and break isotropy.
"""

import hashlib
import itertools
import json
import logging
import zipfile
from pathlib import Path

import healpy as hp
import numpy as np
from scipy.spatial import cKDTree

from cosmic_rays.files import replaced_atomically

__all__ = [
    "Lens",
    "build_lens",
    "default_rigidity_edges_ev",
    "load_or_build_lens",
]

logger = logging.getLogger(__name__)

#: Committed lens files (the default proton lens), looked up before the cache. The file is
#: deterministic; after a change of the field or the integrator regenerate it with
#: ``python -m cosmic_rays lens --out cosmic_rays/lens_data`` (tests/test_lens.py
#: spot-checks it against fresh backtracking).
PACKAGED_LENS_DIR = Path(__file__).resolve().parent / "lens_data"

#: Format version of the lens file; part of the cache key.
LENS_FORMAT_VERSION = 1

#: Sub-pixel refinement: events are placed at the centre of a random child pixel this
#: many HEALPix levels finer (a factor 2**4 = 16 in nside, i.e. 256 children).
SUBPIXEL_LEVELS = 4


def default_rigidity_edges_ev(
    energy_min_eev=40.0, energy_max_eev=10**2.5, charge=1, n_bins=14
):
    """Log-spaced rigidity bin edges R = E / Z covering an energy range.

    Deflections scale as 1 / R, so equal steps in log R give equal relative errors in the
    deflection: with 14 bins from 40 to 316 EV the bin centre is within 8 % of any
    rigidity in the bin.

    Parameters
    ----------
    energy_min_eev, energy_max_eev : float
        Energy range in EeV (default 40 EeV to the cut at 10^20.5 eV).
    charge : int
        Nuclear charge Z of the particles.
    n_bins : int
        Number of bins.

    Returns
    -------
    numpy.ndarray
        ``n_bins + 1`` increasing edges in EV.
    """
    if not (0 < energy_min_eev < energy_max_eev) or charge < 1 or n_bins < 1:
        raise ValueError(
            f"got energy range ({energy_min_eev}, {energy_max_eev}) EeV, "
            f"charge {charge}, "
            f"n_bins {n_bins}; expected 0 < min < max, charge >= 1 and n_bins >= 1."
        )
    return np.geomspace(energy_min_eev / charge, energy_max_eev / charge, n_bins + 1)


class Lens:
    """Backtracked directions of HEALPix pixel centres, per rigidity bin.

    Parameters
    ----------
    nside : int
        HEALPix resolution of the observed-direction grid (NESTED ordering).
    rigidity_edges_ev : array_like, shape (B + 1,)
        Increasing rigidity bin edges in EV. Bin b is represented by the backtracking
        done at the geometric centre of its edges.
    directions : array_like, shape (B, 12 nside^2, 3)
        ``directions[b, p]`` is the unit vector (galactic frame) outside the Galaxy from
        which a particle of rigidity in bin b observed in pixel p came.
    field_name : str
        Description of the field the lens was built in (its ``repr``).
    """

    def __init__(self, nside, rigidity_edges_ev, directions, field_name):
        self.nside = int(nside)
        self.rigidity_edges_ev = np.asarray(rigidity_edges_ev, dtype=float)
        self.directions = np.asarray(directions, dtype=np.float32)
        self.field_name = str(field_name)
        n_bins = len(self.rigidity_edges_ev) - 1
        expected = (n_bins, hp.nside2npix(self.nside), 3)
        if self.directions.shape != expected:
            raise ValueError(
                f"lens directions have shape {self.directions.shape}; "
                f"expected {expected} "
                f"for nside {self.nside} and {n_bins} rigidity bins: rebuild the lens."
            )
        if (
            np.any(np.diff(self.rigidity_edges_ev) <= 0)
            or self.rigidity_edges_ev[0] <= 0
        ):
            raise ValueError(
                f"rigidity edges {self.rigidity_edges_ev} are not positive and "
                "increasing: pass increasing edges in EV."
            )
        self._trees = [None] * n_bins

    @property
    def n_bins(self):
        """Number of rigidity bins."""
        return len(self.rigidity_edges_ev) - 1

    @property
    def rigidity_centres_ev(self):
        """Geometric centres of the rigidity bins in EV, where the lens was computed."""
        edges = self.rigidity_edges_ev
        return np.sqrt(edges[:-1] * edges[1:])

    @property
    def pixel_area_sr(self):
        """Solid angle of one pixel in steradians."""
        return hp.nside2pixarea(self.nside)

    @property
    def key(self):
        """Parameters that identify the lens (used as the cache key)."""
        return lens_key(self.nside, self.rigidity_edges_ev, self.field_name)

    def bin_index(self, rigidity_ev):
        """Rigidity bin of each rigidity; values outside the edges raise ValueError."""
        rigidity_ev = np.asarray(rigidity_ev, dtype=float)
        edges = self.rigidity_edges_ev
        tolerance = 1e-9 * edges[-1]
        outside = (rigidity_ev < edges[0] - tolerance) | (
            rigidity_ev > edges[-1] + tolerance
        )
        if np.any(outside):
            raise ValueError(
                f"rigidities {rigidity_ev[outside][:3]} EV lie outside the lens range "
                f"[{edges[0]:.4g}, {edges[-1]:.4g}] EV: build a lens for this energy "
                "range and charge (cosmic_rays.lens.load_or_build_lens)."
            )
        return np.clip(
            np.searchsorted(edges, rigidity_ev, side="right") - 1, 0, self.n_bins - 1
        )

    def tree(self, bin_index):
        """KD-tree of the backtracked directions of one bin (built on first use)."""
        if self._trees[bin_index] is None:
            self._trees[bin_index] = cKDTree(
                self.directions[bin_index].astype(np.float64)
            )
        return self._trees[bin_index]

    def deflection_rad(self, bin_index):
        """Angle between each observed pixel centre and its backtracked direction."""
        pixel_dirs = np.stack(
            hp.pix2vec(self.nside, np.arange(hp.nside2npix(self.nside)), nest=True),
            axis=-1,
        )
        cosine = np.einsum("ij,ij->i", pixel_dirs, self.directions[bin_index])
        return np.arccos(np.clip(cosine, -1.0, 1.0))

    def pixel_weights(
        self, source_directions, bin_index, sigma_rad, n_sigma=3.0, exposure=None
    ):
        """Liouville weights of the observed pixels near each source, one rigidity bin.

        For each source s, returns the pixels p whose backtracked direction lies within
        ``n_sigma`` sigma of s and their weights w_p(s) (module docstring); the weights
        of a source sum to its magnification (0 when the field hides it at this rigidity).

        Parameters
        ----------
        source_directions : array_like, shape (S, 3)
            Unit vectors of the sources outside the Galaxy.
        bin_index : int
            Rigidity bin.
        sigma_rad : float
            Angular spread of the von Mises-Fisher smearing, radians.
        n_sigma : float
            Pixels farther than this many sigma are left out (they carry < exp(-n^2/2)).
        exposure : array_like, shape (12 nside^2,), optional
            Relative exposure of each observed pixel (NESTED), multiplied in.

        Returns
        -------
        pixels : numpy.ndarray of int64
            Pixel indices of all sources, concatenated.
        weights : numpy.ndarray of float64
            Their weights.
        counts : numpy.ndarray of int64, shape (S,)
            How many entries belong to each source, in order.
        """
        sources = np.asarray(source_directions, dtype=float).reshape(-1, 3)
        angle = min(n_sigma * sigma_rad, np.pi)
        chord = 2.0 * np.sin(angle / 2.0) + 1e-9
        neighbours = self.tree(bin_index).query_ball_point(
            sources, r=chord, return_sorted=False
        )
        counts = np.fromiter(
            (len(n) for n in neighbours), dtype=np.int64, count=len(neighbours)
        )
        pixels = np.fromiter(
            itertools.chain.from_iterable(neighbours),
            dtype=np.int64,
            count=int(counts.sum()),
        )
        owner = np.repeat(np.arange(len(sources)), counts)
        cosine = np.einsum(
            "ij,ij->i", self.directions[bin_index, pixels], sources[owner]
        )
        weights = self.pixel_area_sr * von_mises_fisher_density(cosine, sigma_rad)
        if exposure is not None:
            weights = weights * np.asarray(exposure)[pixels]
        return pixels, weights, counts

    def save(self, path):
        """Write the lens atomically to ``path`` (.npz, float16 unit vectors)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {
            "directions": self.directions.astype(np.float16),
            "rigidity_edges_ev": self.rigidity_edges_ev,
            "nside": np.int64(self.nside),
            "field_name": np.str_(self.field_name),
            "format_version": np.int64(LENS_FORMAT_VERSION),
        }
        _atomic_savez(path, arrays, compressed=True)

    @classmethod
    def load(cls, path):
        """Read a lens written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            missing = {"directions", "rigidity_edges_ev", "nside", "field_name"} - set(
                f.files
            )
            if missing:
                raise ValueError(
                    f"{path} lacks {sorted(missing)}; it is not a lens file: delete it "
                    "and let cosmic_rays.lens.load_or_build_lens rebuild it."
                )
            directions = f["directions"].astype(np.float32)
            norms = np.linalg.norm(directions, axis=-1, keepdims=True)
            return cls(
                int(f["nside"]),
                f["rigidity_edges_ev"],
                directions / norms,
                str(f["field_name"]),
            )


def von_mises_fisher_density(cosine, sigma_rad):
    """von Mises-Fisher density on the sphere, per steradian, kappa = 1 / sigma^2.

    f = kappa / (2 pi (1 - exp(-2 kappa))) exp(kappa (cos(theta) - 1)), written so that it
    neither overflows for large kappa nor loses precision for small kappa.
    """
    kappa = 1.0 / sigma_rad**2
    norm = kappa / (2.0 * np.pi * -np.expm1(-2.0 * kappa))
    return norm * np.exp(kappa * (np.asarray(cosine) - 1.0))


def lens_key(nside, rigidity_edges_ev, field_name):
    """Short hash of the lens parameters, used in cache file names."""
    payload = json.dumps(
        {
            "nside": int(nside),
            "edges": [round(float(e), 9) for e in rigidity_edges_ev],
            "field": str(field_name),
            "version": LENS_FORMAT_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def build_lens(nside=64, rigidity_edges_ev=None, field=None, progress=True):
    """Backtrack every pixel centre of a HEALPix grid at each rigidity bin centre.

    Parameters
    ----------
    nside : int
        HEALPix resolution (64: 49 152 pixels of 0.92 degrees).
    rigidity_edges_ev : array_like, optional
        Bin edges in EV; default :func:`default_rigidity_edges_ev` (protons).
    field : callable, optional
        Magnetic field, positions (N, 3) kpc -> microgauss; default JF12().
    progress : bool
        Show a tqdm bar over the rigidity bins.

    Returns
    -------
    Lens
    """
    from tqdm.auto import tqdm

    from cosmic_rays.galactic_field import JF12
    from cosmic_rays.propagation import backtrack

    if rigidity_edges_ev is None:
        rigidity_edges_ev = default_rigidity_edges_ev()
    field = JF12() if field is None else field
    edges = np.asarray(rigidity_edges_ev, dtype=float)
    centres = np.sqrt(edges[:-1] * edges[1:])
    pixel_dirs = np.stack(
        hp.pix2vec(nside, np.arange(hp.nside2npix(nside)), nest=True), axis=-1
    )
    directions = np.empty((len(centres), len(pixel_dirs), 3), dtype=np.float32)
    for b, rigidity in enumerate(tqdm(centres, desc="lens bins", disable=not progress)):
        rigidities = np.full(len(pixel_dirs), rigidity)
        directions[b] = backtrack(pixel_dirs, rigidities, field)
    return Lens(nside, edges, directions, repr(field))


def load_or_build_lens(
    nside=64, rigidity_edges_ev=None, field=None, cache_dir=None, progress=True
):
    """The lens for these parameters: packaged copy, else disk cache, else build it.

    Parameters
    ----------
    nside, rigidity_edges_ev, field, progress
        As for :func:`build_lens`.
    cache_dir : path-like, optional
        Where built lenses are cached; default ``cosmic_rays.DATA_DIR / "lens"``.

    Returns
    -------
    Lens
    """
    from cosmic_rays import DATA_DIR
    from cosmic_rays.galactic_field import JF12

    if rigidity_edges_ev is None:
        rigidity_edges_ev = default_rigidity_edges_ev()
    field = JF12() if field is None else field
    key = lens_key(nside, rigidity_edges_ev, repr(field))
    name = f"lens_nside{nside}_{key}.npz"
    cache_dir = Path(DATA_DIR) / "lens" if cache_dir is None else Path(cache_dir)
    for candidate in (PACKAGED_LENS_DIR / name, cache_dir / name):
        if candidate.exists():
            logger.info("loading lens %s", candidate)
            return Lens.load(candidate)
    logger.info("building lens nside %d, %s (cached as %s)", nside, field, name)
    lens = build_lens(nside, rigidity_edges_ev, field, progress=progress)
    lens.save(cache_dir / name)
    return lens


def _atomic_savez(path, arrays, compressed=False):
    """Write an .npz through a temporary file beside ``path`` (``replaced_atomically``)."""
    with replaced_atomically(path) as handle:
        _write_npz(handle, arrays, compressed)


def _write_npz(handle, arrays, compressed):
    """Write arrays as an .npz archive that np.load reads, byte for byte reproducible.

    np.savez stamps each member with the current time; a fixed time stamp makes the same
    arrays give the same file, so a seed can be checked against a file's checksum.
    """
    compression = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(
        handle, "w", compression=compression, allowZip64=True
    ) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = compression
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(
                    member, np.asanyarray(value), allow_pickle=False
                )
