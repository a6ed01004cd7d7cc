"""The regular magnetic field of the Milky Way after Jansson and Farrar (2012).

Conventions used throughout the package: positions are galactocentric Cartesian
coordinates in kpc, with the Sun (and Earth) at (-8.5, 0, 0); +x points from the Sun
towards the Galactic centre, +z towards the north Galactic pole, and +y completes the
right-handed frame (towards Galactic longitude l = 90 degrees as seen from the Sun).
Fields are in microgauss.

The model has three parts (Jansson & Farrar 2012, ApJ 757, 14, arXiv:1204.3662;
parameters from their Table 1, the regular-field rows):

- a thin disk: a purely azimuthal "molecular ring" between 3 and 5 kpc and, beyond
  5 kpc, eight logarithmic spiral arms of pitch angle 11.5 degrees, each with its own
  field strength falling as 1/r;
- a toroidal halo, purely azimuthal, with separate strengths and extents north and
  south of the plane;
- the "X field": out-of-plane, poloidal field lines, straight in the (r, z) plane.

The disk and the halo are joined by a logistic function in |z|. The field is zero
more than 20 kpc from the Galactic centre, and the halo and X parts are zero within
1 kpc of it, as in CRPropa's ``JF12Field``, whose conventions (arm boundaries, the sign
of each part) we follow. The code is our own NumPy rendering of the published
equations.
"""

import numpy as np

__all__ = ["JF12", "UniformField", "larmor_radius_kpc"]

#: Larmor radius in kpc of a particle of rigidity 1 EV (1e18 V) in 1 microgauss:
#: r_L = R / (c B) = 1e18 V / (299 792 458 m/s x 1e-10 T) = 3.3356e19 m = 1.0810 kpc.
LARMOR_KPC_PER_EV_PER_MICROGAUSS = 1e18 / (299_792_458.0 * 1e-10) / 3.085_677_581e19

#: Radius in kpc of the sphere outside which the field model is zero.
GALAXY_RADIUS_KPC = 20.0


def larmor_radius_kpc(rigidity_ev, field_microgauss):
    """Larmor radius r_L = 1.081 kpc x (R / EV) / (B / microgauss).

    Parameters
    ----------
    rigidity_ev : float or array_like
        Rigidity R = E / Z in EV (1e18 V); the sign is ignored.
    field_microgauss : float or array_like
        Magnitude of the field perpendicular to the motion, in microgauss.

    Returns
    -------
    numpy.ndarray or float
        The radius of the circle the particle describes, in kpc.
    """
    return LARMOR_KPC_PER_EV_PER_MICROGAUSS * np.abs(rigidity_ev) / field_microgauss


def _logistic(x, x0, width):
    """JF12's smooth step L(x; x0, w) = 1 / (1 + exp(-2 (|x| - x0) / w))."""
    return 1.0 / (1.0 + np.exp(-2.0 * (np.abs(x) - x0) / width))


def _as_positions(positions_kpc):
    positions = np.asarray(positions_kpc, dtype=float)
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(
            f"positions_kpc has shape {positions.shape}; expected (N, 3) galactocentric "
            "x, y, z in kpc: reshape a single point with np.reshape(p, (1, 3))."
        )
    if not np.all(np.isfinite(positions)):
        raise ValueError(
            "positions_kpc contains NaN or infinite values; expected finite positions "
            "in kpc: check the trajectory or the input that produced them."
        )
    return positions


class JF12:
    """Regular galactic magnetic field of Jansson & Farrar (2012), in microgauss.

    The best-fit parameters are those of Table 1 of ApJ 757, 14 (arXiv:1204.3662):
    disk arm strengths b_1..b_8 = 0.1, 3.0, -0.9, -0.8, -2.0, -4.2, 0.0, 2.7 microgauss
    (b_8 is not fitted but fixed by requiring zero net flux out of the spiral region;
    the paper quotes 2.7), ring b_ring = 0.1 microgauss, disk/halo transition at
    h_disk = 0.40 kpc with width w_disk = 0.27 kpc; toroidal halo B_n = 1.4, B_s = -1.1
    microgauss, r_n = 9.22 kpc, r_s = 16.7 kpc, w_h = 0.20 kpc, z_0 = 5.3 kpc;
    X field B_X = 4.6 microgauss, Theta_X0 = 49 degrees, r_Xc = 4.8 kpc, r_X = 2.9 kpc.
    The spiral arms are labelled by where they cross the negative x axis (the
    Sun-Galactic-centre line behind the Sun): at 5.1, 6.3, 7.1, 8.3, 9.8, 11.4, 12.7
    and 15.5 kpc, pitch angle 11.5 degrees.

    The southern halo radius r_s = 16.7 kpc is the paper's; CRPropa's ``JF12Field``
    rounds it to 17 kpc (``south_radius_kpc=17.0`` reproduces that). The two differ only
    south of the plane between 16.7 and 17 kpc from the axis.

    Parameters
    ----------
    disk, toroidal_halo, x_field : bool
        Which of the three parts to include (all by default). Useful to test one part,
        for example that the halo and the X field are each free of divergence.
    south_radius_kpc : float
        Radial extent r_s of the southern toroidal halo, in kpc.

    Examples
    --------
    >>> field = JF12()
    >>> field([[-8.5, 0.0, 0.5]]).round(3)
    array([[-0.102, -0.49 ,  0.204]])
    """

    pitch_rad = np.deg2rad(11.5)
    arm_radii_kpc = np.array([5.1, 6.3, 7.1, 8.3, 9.8, 11.4, 12.7, 15.5])
    arm_field_microgauss = np.array([0.1, 3.0, -0.9, -0.8, -2.0, -4.2, 0.0, 2.7])
    ring_field_microgauss = 0.1
    disk_height_kpc = 0.40
    disk_width_kpc = 0.27
    north_field_microgauss = 1.4
    south_field_microgauss = -1.1
    north_radius_kpc = 9.22
    halo_width_kpc = 0.20
    halo_scale_height_kpc = 5.3
    x_field_microgauss = 4.6
    x_elevation_rad = np.deg2rad(49.0)
    x_critical_radius_kpc = 4.8
    x_scale_radius_kpc = 2.9

    def __init__(
        self, disk=True, toroidal_halo=True, x_field=True, south_radius_kpc=16.7
    ):
        self.disk = bool(disk)
        self.toroidal_halo = bool(toroidal_halo)
        self.x_field = bool(x_field)
        self.south_radius_kpc = float(south_radius_kpc)

    def __repr__(self):
        return (
            f"JF12(disk={self.disk}, toroidal_halo={self.toroidal_halo}, "
            f"x_field={self.x_field}, south_radius_kpc={self.south_radius_kpc})"
        )

    def __call__(self, positions_kpc):
        """Field vector at each position.

        Parameters
        ----------
        positions_kpc : array_like, shape (N, 3)
            Galactocentric positions in kpc (Sun at (-8.5, 0, 0)).

        Returns
        -------
        numpy.ndarray, shape (N, 3)
            The regular field in microgauss, galactocentric Cartesian components;
            zero beyond 20 kpc from the Galactic centre. On the z axis itself (r = 0),
            where the azimuthal direction is undefined, the horizontal components of the
            halo are zero.
        """
        positions = _as_positions(positions_kpc)
        field = np.zeros_like(positions)
        radius_sq = np.einsum("ij,ij->i", positions, positions)
        inside = radius_sq < GALAXY_RADIUS_KPC**2
        if inside.all():
            field[:, 0], field[:, 1], field[:, 2] = self._field_inside(
                positions[:, 0], positions[:, 1], positions[:, 2], radius_sq
            )
        elif inside.any():
            index = np.flatnonzero(inside)
            x, y, z = positions[index].T
            field[index, 0], field[index, 1], field[index, 2] = self._field_inside(
                x, y, z, radius_sq[index]
            )
        return field

    def _field_inside(self, x, y, z, radius_sq):
        """Cartesian components (bx, by, bz) at points within 20 kpc."""
        r = np.sqrt(x * x + y * y)
        inverse_r = 1.0 / np.maximum(r, 1e-12)
        cos_phi = x * inverse_r
        sin_phi = y * inverse_r
        disk_to_halo = _logistic(z, self.disk_height_kpc, self.disk_width_kpc)
        b_radial = np.zeros_like(r)
        b_azimuthal = np.zeros_like(r)
        b_z = np.zeros_like(r)

        if self.disk:
            radial, azimuthal = self._disk(x, y, r, inverse_r, disk_to_halo)
            b_radial += radial
            b_azimuthal += azimuthal

        # The halo and the X field vanish within 1 kpc of the Galactic centre.
        outside_core = radius_sq > 1.0
        if self.toroidal_halo:
            b_azimuthal += outside_core * self._toroidal_halo(r, z, disk_to_halo)
        if self.x_field:
            radial, vertical = self._x_field(r, inverse_r, z)
            b_radial += outside_core * radial
            b_z += outside_core * vertical

        b_x = b_radial * cos_phi - b_azimuthal * sin_phi
        b_y = b_radial * sin_phi + b_azimuthal * cos_phi
        return b_x, b_y, b_z

    def arm_index(self, positions_kpc):
        """Which spiral arm (0..7) each position belongs to, by its in-plane location.

        A logarithmic spiral of pitch p through (r, phi) crosses the negative x axis
        (phi = pi) at r exp((pi - phi) tan p); wound back by whole turns (factors of
        exp(2 pi tan p)) until it lies inside the outermost boundary, 15.5 kpc, that
        crossing radius tells the arm. Defined for all points off the z axis;
        physically meaningful where r > 5 kpc.

        Parameters
        ----------
        positions_kpc : array_like, shape (N, 3)
            Galactocentric positions in kpc.

        Returns
        -------
        numpy.ndarray of int, shape (N,)
        """
        x, y, _ = _as_positions(positions_kpc).T
        return self._arm_index(x, y, np.hypot(x, y))

    def _arm_index(self, x, y, r):
        tan_pitch = np.tan(self.pitch_rad)
        log_turn = 2.0 * np.pi * tan_pitch
        log_outermost = np.log(self.arm_radii_kpc[-1])
        log_crossing = (
            np.log(np.maximum(r, 1e-300)) + (np.pi - np.arctan2(y, x)) * tan_pitch
        )
        turns = np.maximum(np.ceil((log_crossing - log_outermost) / log_turn), 0.0)
        log_crossing -= turns * log_turn
        index = np.searchsorted(np.log(self.arm_radii_kpc), log_crossing, side="right")
        return np.minimum(index, len(self.arm_radii_kpc) - 1)

    def _disk(self, x, y, r, inverse_r, disk_to_halo):
        """Radial and azimuthal disk field: ring at 3 < r < 5 kpc, spiral arms beyond."""
        strength = np.zeros_like(r)
        strength[(r > 3.0) & (r < 5.0)] = self.ring_field_microgauss
        spiral = r >= 5.0
        index = np.flatnonzero(spiral)
        arms = self._arm_index(x[index], y[index], r[index])
        strength[index] = self.arm_field_microgauss[arms]
        strength *= 5.0 * inverse_r * (1.0 - disk_to_halo)

        # The ring is azimuthal; arm fields follow the spiral, tilted by the pitch angle.
        radial = strength * (spiral * np.sin(self.pitch_rad))
        azimuthal = strength * np.where(spiral, np.cos(self.pitch_rad), 1.0)
        return radial, azimuthal

    def _toroidal_halo(self, r, z, disk_to_halo):
        """Azimuthal halo field: separate north and south tori."""
        north = z >= 0.0
        peak = np.where(north, self.north_field_microgauss, self.south_field_microgauss)
        extent_kpc = np.where(north, self.north_radius_kpc, self.south_radius_kpc)
        radial_cut = 1.0 - _logistic(r, extent_kpc, self.halo_width_kpc)
        height = np.exp(-np.abs(z) / self.halo_scale_height_kpc)
        return peak * radial_cut * height * disk_to_halo

    def _x_field(self, r, inverse_r, z):
        """Radial and vertical components of the X field.

        A field line starts in the plane at r_p. Beyond the critical footpoint r_Xc the
        lines are straight at the fixed elevation Theta_X0 and the strength goes as
        b(r_p) r_p / r; inside, the lines fan out from the z axis so that the elevation
        varies with height, and the strength goes as b(r_p) (r_p / r)^2, with
        b(r_p) = B_X exp(-r_p / r_X). Both keep the field free of divergence.
        """
        abs_z = np.abs(z)
        cot_elevation = 1.0 / np.tan(self.x_elevation_rad)
        critical_r = self.x_critical_radius_kpc + abs_z * cot_elevation
        inner = r < critical_r

        contraction = self.x_critical_radius_kpc / critical_r
        footpoint = np.where(inner, r * contraction, r - abs_z * cot_elevation)
        dilution = np.where(inner, contraction * contraction, footpoint * inverse_r)
        strength = self.x_field_microgauss * np.exp(
            -footpoint / self.x_scale_radius_kpc
        )
        strength *= dilution

        # Inside, the line runs from the footpoint through the point; it is vertical in
        # the plane and on the axis, where that segment has zero length.
        horizontal = np.where(inner, r - footpoint, np.cos(self.x_elevation_rad))
        vertical = np.where(inner, abs_z, np.sin(self.x_elevation_rad))
        length = np.sqrt(horizontal * horizontal + vertical * vertical)
        on_axis = length == 0.0
        inverse_length = 1.0 / np.where(on_axis, 1.0, length)
        cos_elevation = horizontal * inverse_length
        sin_elevation = np.where(on_axis, 1.0, vertical * inverse_length)

        z_sign = np.where(z < 0.0, -1.0, 1.0)
        return z_sign * strength * cos_elevation, strength * sin_elevation


class UniformField:
    """A field that is the same everywhere, for tests: B(x) = b_microgauss.

    Parameters
    ----------
    b_microgauss : sequence of 3 floats
        The field vector in microgauss.
    radius_kpc : float or None
        If given, the field is zero beyond this distance from the origin, like the
        Galaxy's; if None (the default), it fills all space.
    """

    def __init__(self, b_microgauss=(0.0, 0.0, 1.0), radius_kpc=None):
        b = np.asarray(b_microgauss, dtype=float)
        if b.shape != (3,) or not np.all(np.isfinite(b)):
            raise ValueError(
                f"b_microgauss is {b_microgauss!r}; expected three finite numbers "
                "(Bx, By, Bz) in microgauss, e.g. (0, 0, 1)."
            )
        self.b_microgauss = b
        self.radius_kpc = None if radius_kpc is None else float(radius_kpc)

    def __repr__(self):
        return f"UniformField(b_microgauss={tuple(self.b_microgauss)})"

    def __call__(self, positions_kpc):
        """Field at each position, shape (N, 3), microgauss."""
        positions = _as_positions(positions_kpc)
        field = np.broadcast_to(self.b_microgauss, positions.shape).copy()
        if self.radius_kpc is not None:
            outside = np.einsum("ij,ij->i", positions, positions) > self.radius_kpc**2
            field[outside] = 0.0
        return field
