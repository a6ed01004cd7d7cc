"""Sky maps of ultra-high-energy cosmic rays: isotropic background and source streets.

A map holds ``n_events`` arrival directions (unit vectors, galactic frame) with energies.
Background maps are isotropic (or follow the Pierre Auger exposure). Signal maps replace a
fraction of the events by events from a few sources at random directions outside the
Galaxy; the regular field deflects these by about 1 / R and the random field smears them
by about 0.1 rad x 10 EV / R, so each source draws an energy-ordered "street".

Every event's energy follows the Pierre Auger 2020 spectrum above the threshold
(Phys. Rev. D 102, 062005 (2020)). Source events are drawn through the galactic lens
(:mod:`cosmic_rays.lens`) so that Liouville's theorem holds: all sources have the same
luminosity, and a map's source events are shared among its sources in proportion to each
source's magnification by the field (a source the field hides at every rigidity sends
none).
"""

import dataclasses
import logging

import healpy as hp
import numpy as np

__all__ = [
    "SkyMapParameters",
    "auger_exposure",
    "energy_cdf",
    "isotropic_directions",
    "normalised_energy",
    "sample_energies_eev",
    "simulate_maps",
    "spectrum_flux",
    "source_events",
]

logger = logging.getLogger(__name__)

#: Spectrum above the ankle measured by the Pierre Auger Observatory, Phys. Rev. D 102,
#: 062005 (2020), Table III: index 3.05 below the suppression at E_34 = 46 EeV, index 5.1
#: above it, with the transition width omega_34 = 0.05 in log10(E).
AUGER_2020 = {"gamma_below": 3.05, "gamma_above": 5.1, "break_eev": 46.0, "width": 0.05}

#: Latitude of the Pierre Auger Observatory, degrees (Sommers 2001, Astropart. Phys. 14).
AUGER_LATITUDE_DEG = -35.2

#: Largest zenith angle of the Auger events used in anisotropy searches, degrees.
AUGER_MAX_ZENITH_DEG = 60.0

#: Normalised energy of the data set: log10(E / eV) / 20.5, as in the book's original.
ENERGY_NORMALISATION_LOG10_EV = 20.5


@dataclasses.dataclass(frozen=True)
class SkyMapParameters:
    """Physical settings of the simulated sky maps.

    Parameters
    ----------
    n_events : int
        Cosmic rays per map (500 in the exercise).
    energy_threshold_eev : float
        Lowest energy, EeV (40, where the Auger anisotropy studies start).
    energy_cutoff_eev : float
        Highest energy, EeV (10^20.5 eV = 316 EeV).
    spectrum : str or float
        ``"auger2020"`` (default) for the measured spectrum, or a number gamma for a pure
        power law dN/dE ~ E^-gamma.
    charge : int
        Nuclear charge Z of all particles (1: protons). The lens is built per rigidity
        E / Z, so each charge has its own lens.
    n_sources : int
        Sources per signal map, at isotropic random directions outside the Galaxy.
    signal_fraction : float
        Fraction of a signal map's events that come from its sources. The default, 0.036
        (18 of 500 events from 3 sources), was tuned with the full run of the solution
        notebook and ``benchmarks/reference_accuracy.py`` so that the exercise's network
        separates the classes well but not trivially: 0.1 gives over 99 % in three
        epochs, 0.04 gave 98.1 % and 0.036 gave 96.8 % (AUC 0.995) after the ten
        epochs of the lesson.
    smearing_rad_at_10ev : float
        Angular spread (von Mises-Fisher sigma, radians) of the random-field deflection
        at rigidity 10 EV; it scales as 1 / R.
    exposure : str
        ``"full"`` (uniform full sky) or ``"auger"`` (Sommers 2001 exposure of the
        Pierre Auger Observatory, zenith angles up to 60 degrees).
    lens_nside : int
        HEALPix resolution of the lens.
    lens_bins : int
        Number of log-spaced rigidity bins of the lens.
    """

    n_events: int = 500
    energy_threshold_eev: float = 40.0
    energy_cutoff_eev: float = 10**2.5
    spectrum: object = "auger2020"
    charge: int = 1
    n_sources: int = 3
    signal_fraction: float = 0.036
    smearing_rad_at_10ev: float = 0.1
    exposure: str = "full"
    lens_nside: int = 64
    lens_bins: int = 14

    def __post_init__(self):
        problems = []
        if self.n_events < 1:
            problems.append(f"n_events={self.n_events} (expected >= 1)")
        if not 0 < self.energy_threshold_eev < self.energy_cutoff_eev:
            problems.append(
                f"energy range {self.energy_threshold_eev}-{self.energy_cutoff_eev} EeV "
                "(expected 0 < threshold < cutoff)"
            )
        if not (self.spectrum == "auger2020" or _is_number(self.spectrum)):
            problems.append(
                f"spectrum={self.spectrum!r} (expected 'auger2020' or a number)"
            )
        if int(self.charge) != self.charge or self.charge < 1:
            problems.append(f"charge={self.charge} (expected an integer >= 1)")
        if not 1 <= self.n_sources <= 127:
            problems.append(
                f"n_sources={self.n_sources} (expected 1 to 127, stored as int8)"
            )
        if not 0 <= self.signal_fraction <= 1:
            problems.append(f"signal_fraction={self.signal_fraction} (expected 0 to 1)")
        if self.smearing_rad_at_10ev < 0:
            problems.append(
                f"smearing_rad_at_10ev={self.smearing_rad_at_10ev} (expected >= 0)"
            )
        if self.exposure not in ("full", "auger"):
            problems.append(f"exposure={self.exposure!r} (expected 'full' or 'auger')")
        if problems:
            raise ValueError("invalid sky-map parameters: " + "; ".join(problems))

    @property
    def n_signal_events(self):
        """Source events per signal map: round(signal_fraction x n_events)."""
        return int(round(self.signal_fraction * self.n_events))

    def to_dict(self):
        """Plain dictionary, for JSON."""
        return dataclasses.asdict(self)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def spectrum_flux(energy_eev, spectrum="auger2020"):
    """Differential flux dN/dE (arbitrary normalisation) at the given energies.

    For ``"auger2020"`` (Phys. Rev. D 102, 062005, eq. 3 restricted to E > 10 EeV):
    J(E) ~ E^-3.05 [1 + (E / 46 EeV)^(1 / 0.05)]^(-(5.1 - 3.05) x 0.05).
    For a number gamma: J(E) ~ E^-gamma.
    """
    energy_eev = np.asarray(energy_eev, dtype=float)
    if spectrum == "auger2020":
        p = AUGER_2020
        suppression = (1.0 + (energy_eev / p["break_eev"]) ** (1.0 / p["width"])) ** (
            -(p["gamma_above"] - p["gamma_below"]) * p["width"]
        )
        return energy_eev ** -p["gamma_below"] * suppression
    return energy_eev ** -float(spectrum)


def energy_cdf(energy_eev, parameters=None, n_grid=4096):
    """Cumulative distribution of the event energies at the given energies (EeV)."""
    grid_eev, cdf = _cdf_grid(parameters or SkyMapParameters(), n_grid)
    return np.interp(np.log(energy_eev), np.log(grid_eev), cdf)


def _cdf_grid(parameters, n_grid=4096):
    log_e = np.linspace(
        np.log(parameters.energy_threshold_eev),
        np.log(parameters.energy_cutoff_eev),
        n_grid,
    )
    energy = np.exp(log_e)
    density = spectrum_flux(energy, parameters.spectrum) * energy
    steps = 0.5 * (density[1:] + density[:-1]) * np.diff(log_e)
    cdf = np.concatenate([[0.0], np.cumsum(steps)])
    return energy, cdf / cdf[-1]


def sample_energies_eev(rng, size, parameters=None, cdf_range=(0.0, 1.0)):
    """Draw energies (EeV) from the spectrum between threshold and cutoff.

    Inverse-CDF sampling on a fine logarithmic grid (4096 points, so the interpolation
    error is far below the energy resolution of any detector).

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int or tuple
    parameters : SkyMapParameters, optional
    cdf_range : (array_like, array_like)
        Restrict the draw to CDF values in [low, high) (used to sample within one
        rigidity bin); broadcast against ``size``.
    """
    grid_eev, cdf = _cdf_grid(parameters or SkyMapParameters())
    low, high = cdf_range
    u = low + (np.asarray(high) - low) * rng.random(size)
    return np.exp(np.interp(u, cdf, np.log(grid_eev)))


def normalised_energy(energy_eev):
    """log10(E / eV) / 20.5, the energy feature of the data set."""
    return np.log10(np.asarray(energy_eev) * 1e18) / ENERGY_NORMALISATION_LOG10_EV


def isotropic_directions(rng, size):
    """Unit vectors uniform on the sphere, shape ``size + (3,)``."""
    size = (size,) if np.isscalar(size) else tuple(size)
    cos_theta = rng.uniform(-1.0, 1.0, size)
    phi = rng.uniform(0.0, 2.0 * np.pi, size)
    sin_theta = np.sqrt(1.0 - cos_theta**2)
    return np.stack(
        [sin_theta * np.cos(phi), sin_theta * np.sin(phi), cos_theta], axis=-1
    )


def auger_exposure(
    directions, latitude_deg=AUGER_LATITUDE_DEG, max_zenith_deg=AUGER_MAX_ZENITH_DEG
):
    """Relative exposure of a ground array with full duty cycle, maximum 1.

    Sommers (2001), Astropart. Phys. 14, 271, eq. 2: for declination delta,
    omega ~ cos(a0) cos(delta) sin(alpha_m) + alpha_m sin(a0) sin(delta), where a0 is the
    site latitude and alpha_m the hour angle at which the zenith angle reaches its
    maximum: cos(alpha_m) = (cos(theta_max) - sin(a0) sin(delta)) / (cos(a0) cos(delta)),
    clipped to [0, pi].

    Parameters
    ----------
    directions : array_like, shape (..., 3)
        Unit vectors in the galactic frame (rotated to equatorial with healpy).
    """
    directions = np.asarray(directions, dtype=float)
    flat = directions.reshape(-1, 3)
    equatorial = np.asarray(hp.Rotator(coord=["G", "C"])(flat.T)).T
    declination = np.arcsin(np.clip(equatorial[:, 2], -1.0, 1.0))
    a0 = np.deg2rad(latitude_deg)
    xi = (np.cos(np.deg2rad(max_zenith_deg)) - np.sin(a0) * np.sin(declination)) / (
        np.cos(a0) * np.cos(declination)
    )
    alpha_m = np.arccos(np.clip(xi, -1.0, 1.0))
    omega = np.cos(a0) * np.cos(declination) * np.sin(alpha_m) + alpha_m * np.sin(
        a0
    ) * np.sin(declination)
    # The maximum is at the declination that passes through the zenith, delta = a0.
    xi_max = (np.cos(np.deg2rad(max_zenith_deg)) - np.sin(a0) ** 2) / np.cos(a0) ** 2
    alpha_max = np.arccos(np.clip(xi_max, -1.0, 1.0))
    omega_max = np.cos(a0) ** 2 * np.sin(alpha_max) + alpha_max * np.sin(a0) ** 2
    return (omega / omega_max).reshape(directions.shape[:-1])


def background_directions(rng, size, exposure="full"):
    """Directions of background events: isotropic, or isotropic times the exposure."""
    size = (size,) if np.isscalar(size) else tuple(size)
    if exposure == "full":
        return isotropic_directions(rng, size)
    n = int(np.prod(size))
    accepted = np.empty((0, 3))
    while len(accepted) < n:
        candidates = isotropic_directions(rng, 2 * (n - len(accepted)) + 16)
        keep = rng.random(len(candidates)) < auger_exposure(candidates)
        accepted = np.concatenate([accepted, candidates[keep]])
    return accepted[:n].reshape(size + (3,))


def _pixel_exposure(lens, exposure):
    if exposure == "full":
        return None
    pixel_dirs = np.stack(
        hp.pix2vec(lens.nside, np.arange(hp.nside2npix(lens.nside)), nest=True), axis=-1
    )
    return auger_exposure(pixel_dirs)


def source_events(
    lens, source_directions, n_events, parameters, rng, pixel_exposure=None
):
    """Draw the source events of many maps through the lens (Liouville sampling).

    For every source s and rigidity bin b the lens gives pixel weights w_p(s, b) whose
    sum mu(s, b) is the magnification. With F(b) the fraction of the spectrum in bin b,
    each event picks a source k with probability ~ sum_b F(b) mu(s_k, b) (equal
    luminosities), a bin with probability ~ F(b) mu(s_k, b), an energy in the bin from the
    spectrum, an observed pixel with probability ~ w_p(s_k, b), and a point inside the
    pixel.

    Parameters
    ----------
    lens : cosmic_rays.lens.Lens
    source_directions : array_like, shape (M, S, 3)
        Source unit vectors for M maps with S sources each. Maps whose sources are all
        hidden by the field get new random sources (drawn with ``rng``).
    n_events : int
        Source events per map.
    parameters : SkyMapParameters
    rng : numpy.random.Generator
    pixel_exposure : array_like, shape (12 nside^2,), optional
        Relative exposure per lens pixel (NESTED).

    Returns
    -------
    directions : numpy.ndarray, shape (M, n_events, 3)
    energy_eev : numpy.ndarray, shape (M, n_events)
    source : numpy.ndarray of int, shape (M, n_events)
        Index (0..S-1) of the source each event came from.
    source_directions : numpy.ndarray, shape (M, S, 3)
        The sources actually used (some may have been redrawn).
    """
    sources = np.array(source_directions, dtype=float)
    n_maps, n_sources, _ = sources.shape
    charge = parameters.charge
    edges_eev = lens.rigidity_edges_ev * charge
    lo, hi = parameters.energy_threshold_eev, parameters.energy_cutoff_eev
    if edges_eev[0] > lo * (1 + 1e-9) or edges_eev[-1] < hi * (1 - 1e-9):
        raise ValueError(
            f"the lens covers {edges_eev[0]:.4g}-{edges_eev[-1]:.4g} EeV for charge "
            f"{charge}, "
            f"the spectrum {lo:.4g}-{hi:.4g} EeV: build a lens with "
            "default_rigidity_edges_ev(threshold, cutoff, charge)."
        )
    bin_cdf = energy_cdf(np.clip(edges_eev, lo, hi), parameters)
    bin_fraction = np.diff(bin_cdf)
    sigmas = _effective_sigma_rad(lens, parameters)

    # Magnification of every source in every bin, and the flat pixel/weight lists.
    while True:
        flat_sources = sources.reshape(-1, 3)
        per_bin = [
            lens.pixel_weights(flat_sources, b, sigmas[b], exposure=pixel_exposure)
            for b in range(lens.n_bins)
        ]
        magnification = np.stack(
            [
                np.add.reduceat(np.append(w, 0.0), _starts(c))[: len(c)] * (c > 0)
                for _, w, c in per_bin
            ],
            axis=-1,
        ).reshape(n_maps, n_sources, lens.n_bins)
        bin_probability = magnification * bin_fraction
        source_weight = bin_probability.sum(axis=-1)
        hidden = source_weight.sum(axis=-1) <= 0
        if not np.any(hidden):
            break
        logger.info(
            "redrawing the sources of %d maps hidden by the field", hidden.sum()
        )
        sources[hidden] = isotropic_directions(rng, (int(hidden.sum()), n_sources))

    shape = (n_maps, n_events)
    source = _categorical(rng, source_weight, n_events)
    map_index = np.repeat(np.arange(n_maps), n_events).reshape(shape)
    event_bins = _categorical(rng, bin_probability[map_index, source], None)
    energy_eev = sample_energies_eev(
        rng, shape, parameters, cdf_range=(bin_cdf[event_bins], bin_cdf[event_bins + 1])
    )

    pixels = np.empty(shape, dtype=np.int64)
    flat_pair = (map_index * n_sources + source).ravel()
    for b, (pix, weights, counts) in enumerate(per_bin):
        chosen = event_bins.ravel() == b
        if not np.any(chosen):
            continue
        starts = _starts(counts)
        cumulative = np.cumsum(weights)
        before = np.concatenate([[0.0], cumulative])[starts[flat_pair[chosen]]]
        total = np.add.reduceat(np.append(weights, 0.0), starts)[flat_pair[chosen]]
        target = before + rng.random(chosen.sum()) * total
        position = np.searchsorted(cumulative, target, side="right")
        last = starts[flat_pair[chosen]] + counts[flat_pair[chosen]] - 1
        position = np.clip(position, starts[flat_pair[chosen]], last)
        pixels.ravel()[chosen] = pix[position]

    directions = _inside_pixel(lens.nside, pixels, rng)
    return directions, energy_eev, source, sources


def _starts(counts):
    """Start offsets of consecutive groups of the given sizes."""
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def _categorical(rng, weights, n_draws):
    """Draw category indices along the last axis of ``weights`` (unnormalised).

    With ``n_draws`` an int, returns shape ``weights.shape[:-1] + (n_draws,)``; with None,
    one draw per row of ``weights``.
    """
    cumulative = np.cumsum(weights, axis=-1)
    total = cumulative[..., -1:]
    if n_draws is None:
        u = rng.random(weights.shape[:-1] + (1,)) * total
        return np.minimum((cumulative <= u).sum(axis=-1), weights.shape[-1] - 1)
    u = rng.random(weights.shape[:-1] + (n_draws,)) * total
    index = (cumulative[..., None, :] <= u[..., :, None]).sum(axis=-1)
    return np.minimum(index, weights.shape[-1] - 1)


def _effective_sigma_rad(lens, parameters):
    """Smearing per rigidity bin, with the lens resolution added in quadrature.

    The lens samples the extragalactic sky only at the backtracked pixel centres, about
    one pixel apart; a kernel narrower than that would see gaps between them, so the
    pixel size (sqrt of the pixel area) is added in quadrature to sigma = 0.1 x 10 EV / R.
    """
    sigma = parameters.smearing_rad_at_10ev * 10.0 / lens.rigidity_centres_ev
    return np.sqrt(sigma**2 + lens.pixel_area_sr)


def _inside_pixel(nside, pixels, rng):
    """A uniformly random point of each NESTED pixel (centre of a random sub-pixel)."""
    from cosmic_rays.lens import SUBPIXEL_LEVELS

    children = 4**SUBPIXEL_LEVELS
    child = pixels * children + rng.integers(0, children, size=np.shape(pixels))
    vectors = hp.pix2vec(nside * 2**SUBPIXEL_LEVELS, child.ravel(), nest=True)
    return np.stack(vectors, axis=-1).reshape(np.shape(pixels) + (3,))


def simulate_maps(
    n_maps, parameters=None, seed=1, lens=None, progress=True, chunk_maps=2000
):
    """Simulate a balanced, shuffled set of background and signal sky maps.

    Parameters
    ----------
    n_maps : int
        Number of maps; ``n_maps // 2`` are signal maps (label 1), the rest background.
    parameters : SkyMapParameters, optional
        Physical settings (defaults documented there).
    seed : int
        Seed of the random generator; the same seed and parameters give identical maps.
    lens : cosmic_rays.lens.Lens, optional
        Default: ``load_or_build_lens`` for the parameters' charge and energy range.
    progress : bool
        Show a tqdm bar.
    chunk_maps : int
        Maps simulated at once (bounds the memory, about 1 kB per event in flight).

    Returns
    -------
    dict
        ``data`` (n_maps, n_events, 4) float32: x, y, z, normalised energy;
        ``label`` (n_maps,) int64; ``source_index`` (n_maps, n_events) int8, -1 for
        background events; ``source_directions`` (n_maps, n_sources, 3) float32, zero rows
        for background maps.
    """
    from tqdm.auto import tqdm

    from cosmic_rays.lens import default_rigidity_edges_ev, load_or_build_lens

    parameters = parameters or SkyMapParameters()
    if int(n_maps) != n_maps or n_maps < 1:
        raise ValueError(
            f"n_maps={n_maps}; expected a positive integer number of maps."
        )
    n_maps = int(n_maps)
    rng = np.random.default_rng(seed)
    if lens is None:
        edges = default_rigidity_edges_ev(
            parameters.energy_threshold_eev,
            parameters.energy_cutoff_eev,
            parameters.charge,
            parameters.lens_bins,
        )
        lens = load_or_build_lens(parameters.lens_nside, edges, progress=progress)
    pixel_exposure = _pixel_exposure(lens, parameters.exposure)

    labels = np.zeros(n_maps, dtype=np.int64)
    labels[: n_maps // 2] = 1
    labels = rng.permutation(labels)

    n_events, n_signal, n_sources = (
        parameters.n_events,
        parameters.n_signal_events,
        parameters.n_sources,
    )
    data = np.empty((n_maps, n_events, 4), dtype=np.float32)
    source_index = np.full((n_maps, n_events), -1, dtype=np.int8)
    source_dirs = np.zeros((n_maps, n_sources, 3), dtype=np.float32)

    with tqdm(total=n_maps, desc="sky maps", unit="map", disable=not progress) as bar:
        for start in range(0, n_maps, chunk_maps):
            stop = min(start + chunk_maps, n_maps)
            chunk_labels = labels[start:stop]
            m = stop - start
            directions = background_directions(rng, (m, n_events), parameters.exposure)
            energy = sample_energies_eev(rng, (m, n_events), parameters)
            origin = np.full((m, n_events), -1, dtype=np.int8)

            signal = np.flatnonzero(chunk_labels == 1)
            if len(signal) and n_signal:
                sources = isotropic_directions(rng, (len(signal), n_sources))
                s_dirs, s_energy, s_index, sources = source_events(
                    lens, sources, n_signal, parameters, rng, pixel_exposure
                )
                directions[signal, :n_signal] = s_dirs
                energy[signal, :n_signal] = s_energy
                origin[signal, :n_signal] = s_index
                source_dirs[start + signal] = sources

            order = np.argsort(rng.random((m, n_events)), axis=1)
            directions = np.take_along_axis(directions, order[..., None], axis=1)
            energy = np.take_along_axis(energy, order, axis=1)
            data[start:stop, :, :3] = directions
            data[start:stop, :, 3] = normalised_energy(energy)
            source_index[start:stop] = np.take_along_axis(origin, order, axis=1)
            bar.update(m)

    return {
        "data": data,
        "label": labels,
        "source_index": source_index,
        "source_directions": source_dirs,
    }
