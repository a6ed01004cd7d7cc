"""The JF12 regular galactic magnetic field (Jansson & Farrar 2012, ApJ 757, 14)."""

import numpy as np
import pytest

from cosmic_rays.galactic_field import (
    JF12,
    LARMOR_KPC_PER_EV_PER_MICROGAUSS,
    UniformField,
    larmor_radius_kpc,
)

# Reference values from ../shared/DESIGN.md ("Reference values of the JF12 regular
# field"): the standard JF12 regular field with the published parameters (Table 1).
REFERENCE_FIELD = [
    ((-8.5, 0.0, 0.5), (-0.10172, -0.48984, 0.20413)),
    ((-6.0, -2.0, 0.1), (-0.02777, -2.36113, 0.39847)),
    ((1.0, 1.0, 1.0), (-0.48323, 1.13720, 2.13251)),
    ((-5.0, -5.0, 5.0), (0.24641, -0.52437, 0.29247)),
]


@pytest.mark.parametrize("position_kpc, expected_microgauss", REFERENCE_FIELD)
def test_field_matches_reference_values(position_kpc, expected_microgauss):
    b = JF12()(np.array([position_kpc]))
    np.testing.assert_allclose(b[0], expected_microgauss, rtol=0, atol=1e-4)


def test_field_of_many_points_equals_field_of_each_point():
    positions = np.array([p for p, _ in REFERENCE_FIELD] + [(25.0, 0.0, 0.0)])
    together = JF12()(positions)
    one_by_one = np.concatenate([JF12()(p[None]) for p in positions])
    np.testing.assert_array_equal(together, one_by_one)


def test_field_is_zero_beyond_20_kpc():
    rng = np.random.default_rng(1)
    directions = rng.normal(size=(200, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    outside = directions * rng.uniform(20.001, 40.0, size=(200, 1))
    assert np.all(JF12()(outside) == 0.0)
    just_inside = directions * 19.9
    assert np.count_nonzero(np.linalg.norm(JF12()(just_inside), axis=1)) > 150


def test_halo_and_x_field_vanish_within_1_kpc_and_disk_within_3_kpc():
    core = np.array([[0.5, 0.3, 0.2], [0.0, 0.0, 0.99], [-0.7, 0.1, -0.6]])
    assert np.all(JF12()(core) == 0.0)
    inner_disk = np.array([[2.0, 1.0, 0.0], [0.0, -2.9, 0.1]])
    disk_only = JF12(toroidal_halo=False, x_field=False)
    assert np.all(disk_only(inner_disk) == 0.0)


def test_disk_field_in_the_plane_is_horizontal():
    positions = np.array([[-8.5, 0.0, 0.0], [4.0, 3.0, 0.0], [0.0, -12.0, 0.0]])
    b = JF12(toroidal_halo=False, x_field=False)(positions)
    assert np.all(b[:, 2] == 0.0)
    assert np.all(np.linalg.norm(b, axis=1) > 0.0)


def test_spiral_arms_are_numbered_where_they_cross_the_negative_x_axis():
    # Arm boundaries at 5.1, 6.3, 7.1, 8.3, 9.8, 11.4, 12.7, 15.5 kpc on the -x axis
    # (JF12 Table 1); the Sun at 8.5 kpc lies in the fifth arm (index 4).
    radii = np.array([5.05, 6.0, 7.0, 8.0, 8.5, 11.0, 12.0, 14.0])
    positions = np.stack([-radii, np.zeros(8), np.zeros(8)], axis=1)
    np.testing.assert_array_equal(JF12().arm_index(positions), [0, 1, 2, 3, 4, 5, 6, 7])


def test_arm_index_is_constant_along_a_logarithmic_spiral():
    field = JF12()
    tan_pitch = np.tan(field.pitch_rad)
    crossing_kpc = np.array([5.5, 6.7, 7.7, 9.0, 10.5, 12.0, 14.0])
    for start in crossing_kpc:
        azimuth = np.linspace(np.pi, -np.pi + 1e-6, 50)
        radius = start * np.exp(-(np.pi - azimuth) * tan_pitch)
        keep = radius > 5.0
        points = np.stack(
            [radius * np.cos(azimuth), radius * np.sin(azimuth), np.zeros(50)], axis=1
        )[keep]
        assert len(np.unique(field.arm_index(points))) == 1


def test_spiral_arms_carry_almost_no_net_flux():
    # JF12 fixed the eighth arm's strength (2.7 microgauss) by requiring that the radial
    # flux through any cylinder around the axis cancels; at every radius the net flux
    # is then the same small remainder of the rounding.
    disk = JF12(toroidal_halo=False, x_field=False)
    azimuth = np.linspace(-np.pi, np.pi, 100_000, endpoint=False)
    ratios = []
    for r in (6.0, 10.0, 14.0, 19.0):
        ring = np.stack([r * np.cos(azimuth), r * np.sin(azimuth), 0 * azimuth], 1)
        b = disk(ring)
        b_radial = b[:, 0] * np.cos(azimuth) + b[:, 1] * np.sin(azimuth)
        ratios.append(b_radial.mean() / np.abs(b_radial).mean())
    assert np.max(np.abs(ratios)) < 0.01
    np.testing.assert_allclose(ratios, ratios[0], atol=1e-4)


def _divergence_and_scale(field, positions, h=1e-4):
    """Central-difference div B, and the sum |dBx/dx| + |dBy/dy| + |dBz/dz|."""
    divergence = np.zeros(len(positions))
    scale = np.zeros(len(positions))
    for axis in range(3):
        offset = np.zeros(3)
        offset[axis] = h
        derivative = (
            field(positions + offset)[:, axis] - field(positions - offset)[:, axis]
        ) / (2 * h)
        divergence += derivative
        scale += np.abs(derivative)
    return divergence, scale


def _smooth_region_points(n, seed):
    """Random points away from the model's surfaces of discontinuity."""
    rng = np.random.default_rng(seed)
    points = rng.uniform([-15, -15, -8], [15, 15, 8], size=(4 * n, 3))
    radius = np.linalg.norm(points, axis=1)
    r = np.hypot(points[:, 0], points[:, 1])
    z = np.abs(points[:, 2])
    critical_r = 4.8 + z / np.tan(np.deg2rad(49.0))
    smooth = (
        (radius > 1.5)
        & (radius < 19.0)
        & (z > 0.05)
        & (r > 0.2)
        & (np.abs(r - critical_r) > 0.05)
        & (np.abs(r - 3.0) > 0.05)
        & (np.abs(r - 5.0) > 0.05)
    )
    return points[smooth][:n]


@pytest.mark.parametrize(
    "part",
    [
        {"disk": False, "toroidal_halo": True, "x_field": False},
        {"disk": False, "toroidal_halo": False, "x_field": True},
    ],
    ids=["toroidal_halo", "x_field"],
)
def test_halo_and_x_field_are_divergence_free(part):
    field = JF12(**part)
    positions = _smooth_region_points(300, seed=2)
    h = 1e-4
    divergence, scale = _divergence_and_scale(field, positions, h)
    magnitude = np.linalg.norm(field(positions), axis=1)
    # The flux imbalance over a cell of side h, relative to the flux through one face,
    # where the field is not negligible:
    strong = magnitude > 1e-3
    assert np.count_nonzero(strong) > 100
    assert np.max(np.abs(divergence[strong]) * h / magnitude[strong]) < 1e-9
    # ... and the derivatives cancel: div B is tiny against its separate terms.
    informative = scale > 1e-3
    assert np.count_nonzero(informative) > 100
    assert np.max(np.abs(divergence[informative]) / scale[informative]) < 1e-5


def test_divergence_check_detects_a_field_with_sources():
    def radial(positions):
        return JF12(disk=False, x_field=False)(positions) + 0.1 * positions

    positions = _smooth_region_points(50, seed=3)
    divergence, _ = _divergence_and_scale(radial, positions)
    np.testing.assert_allclose(divergence, 0.3, rtol=1e-6)


def test_southern_halo_radius_is_selectable():
    # Between 16.7 kpc (the paper's r_s) and 17 kpc (CRPropa's) south of the plane.
    position = np.array([[-16.85, 0.0, -2.0]])
    paper = JF12(disk=False, x_field=False)(position)
    crpropa = JF12(disk=False, x_field=False, south_radius_kpc=17.0)(position)
    assert np.linalg.norm(crpropa) > 1.5 * np.linalg.norm(paper)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.array([1.0, 2.0, 3.0]), "expected \\(N, 3\\)"),
        (np.zeros((4, 2)), "expected \\(N, 3\\)"),
        (np.array([[np.nan, 0.0, 0.0]]), "NaN or infinite"),
    ],
)
def test_field_refuses_bad_positions_with_a_clear_message(bad, message):
    with pytest.raises(ValueError, match=message):
        JF12()(bad)


def test_uniform_field_is_the_same_everywhere_and_optionally_bounded():
    positions = np.array([[0.0, 0.0, 0.0], [5.0, -3.0, 2.0], [30.0, 0.0, 0.0]])
    np.testing.assert_array_equal(
        UniformField((1.0, 2.0, 3.0))(positions), np.tile([1.0, 2.0, 3.0], (3, 1))
    )
    bounded = UniformField((0.0, 0.0, 1.0), radius_kpc=20.0)(positions)
    np.testing.assert_array_equal(bounded[:, 2], [1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="three finite numbers"):
        UniformField((0.0, 1.0))


def test_larmor_radius_is_1_081_kpc_per_ev_per_microgauss():
    # r_L = R / (c B): 1e18 V / (2.998e8 m/s x 1e-10 T) = 3.336e19 m = 1.0810 kpc
    # (DESIGN.md); 1 kpc = 3.0857e19 m.
    assert LARMOR_KPC_PER_EV_PER_MICROGAUSS == pytest.approx(1.0810, abs=1e-4)
    assert larmor_radius_kpc(40.0, 2.0) == pytest.approx(20 * 1.0810, rel=1e-4)
    assert larmor_radius_kpc(-40.0, 2.0) == larmor_radius_kpc(40.0, 2.0)
