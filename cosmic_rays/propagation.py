"""Charged-particle trajectories in a magnetic field: the relativistic Lorentz force.

A cosmic ray of momentum p and charge Z e in a static magnetic field B keeps its speed
(c, to any precision that matters at 1e19 eV) and turns its direction of motion u as

    du/ds = (Z e / p) u x B = u x B / (R / c),

with s the path length and R = p c / (Z e) ~ E / Z the rigidity. In the units used here
(path in kpc, field in microgauss, rigidity in EV = 1e18 V) this reads
du/ds = u x B / (1.0810 kpc x R / EV), and 1.0810 kpc x (R / EV) / (B / microgauss) is
the Larmor radius r_L.

Conventions (shared with :mod:`cosmic_rays.galactic_field`): positions are
galactocentric, in kpc, with Earth at (-8.5, 0, 0); +x points from Earth towards the
Galactic centre, +z towards the north Galactic pole. An *arrival direction* is the unit
vector from Earth towards the point on the sky a cosmic ray comes from; its velocity at
Earth is minus that.
Rigidities are signed: positive for positively charged nuclei (protons), negative for
their antiparticles.

The integrator is the Boris rotation in its symmetric drift-kick-drift form: half a step
straight ahead, an exact rotation of the direction about the field at that midpoint, and
the second half step along the new direction. It needs one field evaluation per step,
conserves |u| = 1 to rounding, and is time-reversible: reversing the direction and the
charge retraces the path.
"""

import logging

import numpy as np
from tqdm.auto import tqdm

from cosmic_rays.galactic_field import (
    GALAXY_RADIUS_KPC,
    JF12,
    LARMOR_KPC_PER_EV_PER_MICROGAUSS,
)

__all__ = [
    "EARTH_POSITION_KPC",
    "backtrack",
    "default_step_kpc",
    "deflection_angle",
    "propagate",
]

logger = logging.getLogger(__name__)

#: Galactocentric position of Earth (the Sun), kpc, as in Jansson & Farrar (2012).
EARTH_POSITION_KPC = np.array([-8.5, 0.0, 0.0])

#: Longest step, kpc: at high rigidity the step is bounded by the structure of JF12,
#: whose narrowest features are the 0.2-0.27 kpc logistic transitions of disk and halo.
MAX_STEP_KPC = 0.2

#: Turning angle per step, rad, in a strong (10 microgauss) field: bounds the step in
#: proportion to the rigidity. The error of the exit direction grows as the step over
#: the Larmor radius (first order, because JF12 has discontinuities such as the spiral-
#: arm boundaries); with 0.01 rad it is about 0.003 degrees (median over the sky) and
#: 0.1 degrees (99th percentile) from 10 to 320 EV; see benchmarks/propagation_speed.py.
MAX_TURN_RAD = 0.01

#: Field strength, microgauss, above which no part of JF12 rises; sets the step bound.
STRONG_FIELD_MICROGAUSS = 10.0


def default_step_kpc(rigidity_ev):
    """Step length used when none is given, kpc.

    The smaller of ``MAX_STEP_KPC`` and ``MAX_TURN_RAD`` times the Larmor radius in a
    10 microgauss field: 0.0108 kpc x (R / EV), so 0.043 kpc at 40 EV, and 0.2 kpc
    from 185 EV up.

    Parameters
    ----------
    rigidity_ev : float or array_like
        Rigidity in EV (sign ignored).

    Returns
    -------
    numpy.ndarray
        Step lengths in kpc, the shape of ``rigidity_ev``.
    """
    larmor_kpc = (
        LARMOR_KPC_PER_EV_PER_MICROGAUSS * np.abs(rigidity_ev) / STRONG_FIELD_MICROGAUSS
    )
    return np.minimum(MAX_STEP_KPC, MAX_TURN_RAD * larmor_kpc)


def _unit_vectors(vectors, name):
    array = np.asarray(vectors, dtype=float)
    if array.ndim != 2 or array.shape[1] != 3:
        raise ValueError(
            f"{name} has shape {array.shape}; expected (N, 3) unit vectors x, y, z in "
            "the galactic frame: reshape a single vector with np.reshape(v, (1, 3))."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} contains NaN or infinite values; expected unit vectors."
        )
    norms = np.linalg.norm(array, axis=1)
    if np.any(np.abs(norms - 1.0) > 1e-6):
        worst = norms[np.argmax(np.abs(norms - 1.0))]
        raise ValueError(
            f"{name} holds vectors of length {worst:.6g}; expected unit vectors: divide "
            "by np.linalg.norm(v, axis=1, keepdims=True) first."
        )
    return array / norms[:, None]


def _per_particle(values, n, name, positive=False):
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = np.full(n, float(array))
    if array.shape != (n,):
        raise ValueError(
            f"{name} has shape {array.shape}; expected a scalar or shape ({n},), one "
            "value per particle."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{name} contains NaN or infinite values; expected finite ones."
        )
    if positive and np.any(array <= 0.0):
        raise ValueError(f"{name} has values <= 0; expected positive values.")
    return array


def propagate(
    positions_kpc,
    velocity_directions,
    rigidity_ev,
    field,
    *,
    step_kpc=None,
    exit_radius_kpc=GALAXY_RADIUS_KPC,
    max_length_kpc=200.0,
    chunk_size=8192,
    progress=False,
    return_length=False,
):
    """Integrate du/ds = u x B / (1.0810 kpc x R) for many particles at once.

    Here u is the unit velocity, s the path length in kpc, B the field in microgauss
    and R the signed rigidity in EV: a positive charge turns along u x B.

    Each particle moves until it is farther than ``exit_radius_kpc`` from the Galactic
    centre or has travelled ``max_length_kpc``, whichever comes first. Particles that
    leave are dropped from the working set, so the cost follows the particles still
    inside.

    Parameters
    ----------
    positions_kpc : array_like, shape (N, 3)
        Starting positions, galactocentric, kpc.
    velocity_directions : array_like, shape (N, 3)
        Unit vectors along the starting velocities.
    rigidity_ev : float or array_like, shape (N,)
        Signed rigidity R = E / Z in EV (1e18 V): positive for positive charges.
    field : callable
        Maps positions (M, 3) in kpc to field vectors (M, 3) in microgauss, such as
        :class:`~cosmic_rays.galactic_field.JF12`.
    step_kpc : float or array_like, optional
        Path length per step, kpc; by default :func:`default_step_kpc` of the rigidity.
        The last step before ``max_length_kpc`` is shortened to end on it exactly.
    exit_radius_kpc : float or None
        Stop a particle once it is farther than this from the origin, kpc; None never
        stops on distance.
    max_length_kpc : float or array_like, shape (N,)
        Path length after which a particle stops, kpc.
    chunk_size : int
        Particles integrated together; bounds the memory (a few hundred bytes per
        particle) and keeps the working arrays in the processor's cache.
    progress : bool
        Show a tqdm progress bar counting finished trajectories.
    return_length : bool
        Also return the path length each particle travelled.

    Returns
    -------
    positions_kpc : numpy.ndarray, shape (N, 3)
        Where each particle stopped (the first step beyond the exit radius, or the end
        of its path length).
    directions : numpy.ndarray, shape (N, 3)
        Unit vectors along the velocities there.
    length_kpc : numpy.ndarray, shape (N,)
        Path lengths travelled, kpc; only if ``return_length``.
    """
    directions = _unit_vectors(velocity_directions, "velocity_directions")
    n = len(directions)
    positions = np.asarray(positions_kpc, dtype=float)
    if positions.shape != (n, 3) or not np.all(np.isfinite(positions)):
        raise ValueError(
            f"positions_kpc has shape {positions.shape}; expected finite values of "
            f"shape ({n}, 3), one galactocentric position in kpc per direction."
        )
    rigidity = _per_particle(rigidity_ev, n, "rigidity_ev")
    if np.any(rigidity == 0.0):
        raise ValueError(
            "rigidity_ev contains zeros; expected E / Z in EV, non-zero (a neutral "
            "particle is not deflected: its direction is unchanged)."
        )
    steps = default_step_kpc(rigidity) if step_kpc is None else step_kpc
    steps = _per_particle(steps, n, "step_kpc", positive=True)
    max_length = _per_particle(max_length_kpc, n, "max_length_kpc")
    if chunk_size < 1:
        raise ValueError(f"chunk_size is {chunk_size}; expected a positive integer.")

    out_positions = positions.copy()
    out_directions = directions.copy()
    out_length = np.zeros(n)
    with tqdm(total=n, disable=not progress, unit="trajectory", smoothing=0.1) as bar:
        for start in range(0, n, chunk_size):
            chunk = slice(start, min(start + chunk_size, n))
            _integrate_chunk(
                out_positions[chunk],
                out_directions[chunk],
                out_length[chunk],
                rigidity[chunk],
                steps[chunk],
                max_length[chunk],
                field,
                exit_radius_kpc,
                bar,
            )

    unfinished = out_length >= max_length - 1e-9
    if exit_radius_kpc is not None and np.any(unfinished):
        inside = np.linalg.norm(out_positions, axis=1) <= exit_radius_kpc
        if np.any(unfinished & inside):
            logger.warning(
                "%d of %d particles were still inside %.1f kpc after %.0f kpc of path "
                "(trapped or looping); their last directions are returned.",
                np.count_nonzero(unfinished & inside),
                n,
                exit_radius_kpc,
                np.max(max_length),
            )
    if return_length:
        return out_positions, out_directions, out_length
    return out_positions, out_directions


def _integrate_chunk(
    positions, directions, length, rigidity, steps, max_length, field, exit_radius, bar
):
    """Advance one chunk in place, writing each particle's final state as it finishes.

    The working arrays are stored component-major, shape (3, n), so that each Cartesian
    component is contiguous in memory; the field sees them transposed, as (n, 3).
    """
    active = np.arange(len(positions))
    pos = np.ascontiguousarray(positions.T)
    vel = np.ascontiguousarray(directions.T)
    travelled = length.copy()
    # Rotation angle per unit field and unit path: 1 / (1.081 kpc x R / EV).
    inverse_scale = 1.0 / (LARMOR_KPC_PER_EV_PER_MICROGAUSS * rigidity)
    step = steps.copy()
    limit = max_length.copy()
    exit_sq = np.inf if exit_radius is None else exit_radius**2

    while active.size:
        h = np.minimum(step, limit - travelled)
        half = 0.5 * h

        midpoint = pos + half * vel
        b = np.asarray(field(midpoint.T)).T
        vel = _rotate(vel, b, h * inverse_scale)
        pos = midpoint + half * vel
        travelled += h

        done = travelled >= limit - 1e-12
        if exit_radius is not None:
            done |= np.einsum("ij,ij->j", pos, pos) > exit_sq
        if not done.any():
            continue

        finished = active[done]
        positions[finished] = pos[:, done].T
        directions[finished] = vel[:, done].T
        length[finished] = travelled[done]
        bar.update(finished.size)

        keep = ~done
        active = active[keep]
        pos, vel, travelled = pos[:, keep], vel[:, keep], travelled[keep]
        inverse_scale, step, limit = inverse_scale[keep], step[keep], limit[keep]


def _rotate(vel, b, angle_per_field):
    """Rotate each velocity about its field vector by the angle |b| x angle_per_field.

    Boris' construction with t = tan(angle / 2) b / |b|, which makes the rotation angle
    exact; the sign of ``angle_per_field`` (that of the charge) sets the sense, so that
    du = u x b ds / (r_L-scale R) for a positive charge. Arrays are component-major,
    shape (3, n).
    """
    b_x, b_y, b_z = b
    v_x, v_y, v_z = vel
    b_norm = np.sqrt(b_x * b_x + b_y * b_y + b_z * b_z)
    scale = np.tan(0.5 * b_norm * angle_per_field) / np.maximum(b_norm, 1e-300)
    t_x, t_y, t_z = b_x * scale, b_y * scale, b_z * scale
    s = 2.0 / (1.0 + t_x * t_x + t_y * t_y + t_z * t_z)

    p_x = v_x + (v_y * t_z - v_z * t_y)
    p_y = v_y + (v_z * t_x - v_x * t_z)
    p_z = v_z + (v_x * t_y - v_y * t_x)
    rotated = np.empty_like(vel)
    rotated[0] = v_x + s * (p_y * t_z - p_z * t_y)
    rotated[1] = v_y + s * (p_z * t_x - p_x * t_z)
    rotated[2] = v_z + s * (p_x * t_y - p_y * t_x)
    return rotated


def backtrack(
    directions,
    rigidity_ev,
    field=None,
    *,
    observer_kpc=EARTH_POSITION_KPC,
    step_kpc=None,
    exit_radius_kpc=GALAXY_RADIUS_KPC,
    max_length_kpc=200.0,
    chunk_size=8192,
    progress=False,
):
    """Directions outside the Galaxy that cosmic rays seen at Earth came from.

    A particle of rigidity R arriving from direction d (velocity -d) followed, in
    reverse, the path of its antiparticle (rigidity -R) launched from Earth with
    velocity +d. We integrate that path until it leaves the sphere of
    ``exit_radius_kpc`` and return its velocity direction there: where, outside the
    Galaxy, one would look for the source.

    Parameters
    ----------
    directions : array_like, shape (N, 3)
        Observed arrival directions, unit vectors in the galactic frame (x towards the
        Galactic centre, z towards the north Galactic pole).
    rigidity_ev : float or array_like, shape (N,)
        Rigidity R = E / Z of the cosmic rays in EV (1e18 V): positive for protons and
        nuclei, negative for antiparticles.
    field : callable, optional
        Magnetic field in microgauss; :class:`~cosmic_rays.galactic_field.JF12` by
        default.
    observer_kpc : array_like, shape (3,)
        Where the cosmic rays are observed, galactocentric kpc; Earth by default.
    step_kpc, exit_radius_kpc, max_length_kpc, chunk_size, progress
        As in :func:`propagate`.

    Returns
    -------
    numpy.ndarray, shape (N, 3)
        Unit vectors: the directions of the particles' velocities outside the Galaxy,
        reversed in time, i.e. the directions towards their sources.

    Examples
    --------
    >>> import numpy as np
    >>> d = backtrack(np.array([[0.0, 0.0, 1.0]]), 100.0)
    >>> round(float(np.degrees(deflection_angle([[0.0, 0.0, 1.0]], d)[0])), 1)
    3.4
    """
    arrival = _unit_vectors(directions, "directions")
    n = len(arrival)
    rigidity = _per_particle(rigidity_ev, n, "rigidity_ev")
    observer = np.asarray(observer_kpc, dtype=float)
    if observer.shape != (3,):
        raise ValueError(
            f"observer_kpc has shape {observer.shape}; expected (3,), a galactocentric "
            "position in kpc such as (-8.5, 0, 0)."
        )
    field = JF12() if field is None else field
    _, outside = propagate(
        np.broadcast_to(observer, (n, 3)),
        arrival,
        -rigidity,
        field,
        step_kpc=step_kpc,
        exit_radius_kpc=exit_radius_kpc,
        max_length_kpc=max_length_kpc,
        chunk_size=chunk_size,
        progress=progress,
    )
    return outside


def deflection_angle(directions_a, directions_b):
    """Angle between corresponding unit vectors, rad, accurate also for tiny angles.

    Parameters
    ----------
    directions_a, directions_b : array_like, shape (N, 3)
        Unit vectors.

    Returns
    -------
    numpy.ndarray, shape (N,)
        Angles in radians, in [0, pi].
    """
    a = np.asarray(directions_a, dtype=float)
    b = np.asarray(directions_b, dtype=float)
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    dot = np.einsum("...i,...i->...", a, b)
    return np.arctan2(cross, dot)
