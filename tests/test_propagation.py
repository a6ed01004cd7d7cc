"""The Lorentz-force integration and backtracking through the galactic field."""

import healpy as hp
import numpy as np
import pytest

from cosmic_rays.galactic_field import (
    JF12,
    LARMOR_KPC_PER_EV_PER_MICROGAUSS,
    UniformField,
)
from cosmic_rays.propagation import (
    EARTH_POSITION_KPC,
    backtrack,
    default_step_kpc,
    deflection_angle,
    propagate,
)


def _random_directions(n, seed):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _sky_grid(nside):
    return np.array(hp.pix2vec(nside, np.arange(hp.nside2npix(nside)))).T


def _from_earth(n):
    return np.tile(EARTH_POSITION_KPC, (n, 1))


@pytest.fixture(scope="module")
def jf12():
    return JF12()


def test_speed_is_conserved_along_trajectories(jf12):
    directions = _random_directions(200, seed=4)
    _, final = propagate(
        _from_earth(200), directions, 5.0, jf12, step_kpc=0.05, max_length_kpc=40.0
    )
    np.testing.assert_allclose(np.linalg.norm(final, axis=1), 1.0, rtol=0, atol=1e-12)


def test_uniform_field_bends_a_proton_on_a_circle_of_the_larmor_radius():
    # r_L = 1.081 kpc x (R / EV) / (B / microgauss) (DESIGN.md): 2 EV in 1 microgauss
    # gives 2.162 kpc. A proton moving along +x in B along +z turns towards -y
    # (du/ds is along u x B), so the centre of its circle is at (0, -r_L, 0).
    larmor_kpc = 2.0 * LARMOR_KPC_PER_EV_PER_MICROGAUSS
    path_kpc = np.linspace(0.3, 2 * np.pi * larmor_kpc, 12)
    start = np.zeros((12, 3))
    along_x = np.tile([1.0, 0.0, 0.0], (12, 1))
    positions, directions = propagate(
        start,
        along_x,
        2.0,
        UniformField((0.0, 0.0, 1.0)),
        step_kpc=0.01,
        exit_radius_kpc=None,
        max_length_kpc=path_kpc,
    )
    # The midpoint scheme's positions lie on the circle to second order in the
    # turning angle per step, (h / r_L)^2 / 6 = 4e-6 here.
    centre = np.array([0.0, -larmor_kpc, 0.0])
    np.testing.assert_allclose(
        np.linalg.norm(positions - centre, axis=1), larmor_kpc, rtol=1e-5
    )
    turned_rad = path_kpc / larmor_kpc
    expected = np.stack([np.cos(turned_rad), -np.sin(turned_rad), np.zeros(12)], axis=1)
    np.testing.assert_allclose(directions, expected, atol=1e-6)
    np.testing.assert_allclose(positions[-1], [0.0, 0.0, 0.0], atol=1e-6)


def test_negative_rigidity_turns_the_other_way():
    along_x = np.array([[1.0, 0.0, 0.0]])
    field = UniformField((0.0, 0.0, 1.0))
    kwargs = dict(exit_radius_kpc=None, max_length_kpc=1.0, step_kpc=0.01)
    _, positive = propagate(np.zeros((1, 3)), along_x, 2.0, field, **kwargs)
    _, negative = propagate(np.zeros((1, 3)), along_x, -2.0, field, **kwargs)
    assert positive[0, 1] < 0.0 < negative[0, 1]
    np.testing.assert_allclose(positive[0] * [1, -1, 1], negative[0], atol=1e-12)


def test_backtracking_in_a_bounded_uniform_field_follows_the_analytic_arc():
    # The antiparticle of a proton launched from the origin along +x in B = +z turns
    # towards +y on a circle of radius r_L; it leaves the sphere of radius rho after an
    # arc angle alpha with chord 2 r_L sin(alpha / 2) = rho, moving along
    # (cos alpha, sin alpha, 0).
    rigidity_ev, rho_kpc = 20.0, 20.0
    larmor_kpc = rigidity_ev * LARMOR_KPC_PER_EV_PER_MICROGAUSS
    alpha = 2 * np.arcsin(rho_kpc / (2 * larmor_kpc))
    field = UniformField((0.0, 0.0, 1.0), radius_kpc=rho_kpc)
    outside = backtrack(
        np.array([[1.0, 0.0, 0.0]]), rigidity_ev, field, observer_kpc=(0.0, 0.0, 0.0)
    )
    expected = np.array([[np.cos(alpha), np.sin(alpha), 0.0]])
    assert deflection_angle(outside, expected)[0] < 1e-3


def test_field_free_space_leaves_directions_unchanged():
    directions = _random_directions(50, seed=5)
    positions, final = propagate(
        _from_earth(50), directions, 10.0, UniformField((0.0, 0.0, 0.0))
    )
    np.testing.assert_allclose(final, directions, atol=1e-14)
    radius = np.linalg.norm(positions, axis=1)
    assert np.all((radius > 20.0) & (radius <= 20.0 + 0.2 + 1e-9))


def test_backtrack_follows_the_antiparticle_from_earth(jf12):
    directions = _random_directions(20, seed=6)
    _, antiparticle = propagate(_from_earth(20), directions, -60.0, jf12)
    np.testing.assert_array_equal(backtrack(directions, 60.0, jf12), antiparticle)


def test_time_reversal_brings_the_particle_back_to_earth(jf12):
    # Start at the exit point of a backtracked trajectory, with the reversed exit
    # direction and the true (positive) charge, and integrate for the same path length
    # with a different step: the proton must arrive at Earth moving along minus the
    # observed arrival direction.
    arrival = _random_directions(40, seed=7)
    exit_kpc, exit_direction, length_kpc = propagate(
        _from_earth(40), arrival, -40.0, jf12, step_kpc=0.02, return_length=True
    )
    end_kpc, end_direction = propagate(
        exit_kpc,
        -exit_direction,
        40.0,
        jf12,
        step_kpc=0.0123,
        exit_radius_kpc=None,
        max_length_kpc=length_kpc,
    )
    np.testing.assert_allclose(end_kpc, _from_earth(40), atol=0.01)
    assert np.degrees(deflection_angle(end_direction, -arrival)).max() < 0.1


def test_deflection_times_rigidity_approaches_a_constant(jf12):
    # Small-angle limit: the deflection is the path integral of B_perp / (r_L-scale R),
    # so it falls as 1 / R once the path itself no longer depends on R.
    directions = _sky_grid(2)
    rigidities_ev = np.array([100.0, 400.0, 1600.0])
    product = np.array(
        [
            deflection_angle(directions, backtrack(directions, r, jf12)) * r
            for r in rigidities_ev
        ]
    )
    change_low = np.abs(product[1] - product[0]) / product[2]
    change_high = np.abs(product[2] - product[1]) / product[2]
    assert np.median(change_high) < 0.01
    assert np.median(change_high) < np.median(change_low)


@pytest.mark.parametrize(
    "rigidity_ev, expected_deg", [(10.0, 27.0), (40.0, 8.0), (100.0, 3.0)]
)
def test_median_deflection_over_the_sky_matches_design(jf12, rigidity_ev, expected_deg):
    # DESIGN.md: median deflection of protons in JF12 about 27 degrees at 10 EV,
    # 8 at 40 EV and 3 at 100 EV.
    directions = _sky_grid(8)
    outside = backtrack(directions, rigidity_ev, jf12)
    median_deg = np.degrees(np.median(deflection_angle(directions, outside)))
    assert median_deg == pytest.approx(expected_deg, rel=0.2)


def test_results_do_not_depend_on_chunking_or_batching(jf12):
    directions = _random_directions(12, seed=8)
    rigidities_ev = np.linspace(40.0, 300.0, 12)
    together = backtrack(directions, rigidities_ev, jf12)
    chunked = backtrack(directions, rigidities_ev, jf12, chunk_size=5)
    singly = np.concatenate(
        [backtrack(d[None], r, jf12) for d, r in zip(directions, rigidities_ev)]
    )
    np.testing.assert_array_equal(chunked, together)
    np.testing.assert_allclose(singly, together, rtol=0, atol=1e-12)


def test_deflection_angle_is_accurate_for_tiny_and_opposite_angles():
    a = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    b = np.array([[np.cos(1e-9), np.sin(1e-9), 0.0], [-1.0, 0.0, 0.0]])
    np.testing.assert_allclose(deflection_angle(a, b), [1e-9, np.pi], rtol=1e-9)


@pytest.mark.parametrize(
    "directions, rigidity, message",
    [
        (np.array([[2.0, 0.0, 0.0]]), 40.0, "expected unit vectors"),
        (np.array([1.0, 0.0, 0.0]), 40.0, "expected \\(N, 3\\)"),
        (np.array([[np.nan, 0.0, 1.0]]), 40.0, "NaN or infinite"),
        (np.array([[1.0, 0.0, 0.0]]), 0.0, "non-zero"),
        (np.array([[1.0, 0.0, 0.0]]), [40.0, 50.0], "one value per particle"),
        (np.array([[1.0, 0.0, 0.0]]), np.inf, "finite"),
    ],
)
def test_backtrack_refuses_bad_input_with_a_clear_message(
    directions, rigidity, message
):
    with pytest.raises(ValueError, match=message):
        backtrack(directions, rigidity, UniformField())


def test_trapped_particles_are_reported(caplog):
    along_x = np.array([[1.0, 0.0, 0.0]])
    with caplog.at_level("WARNING", logger="cosmic_rays.propagation"):
        _, final = propagate(
            np.zeros((1, 3)),
            along_x,
            1.0,
            UniformField((0.0, 0.0, 1.0)),
            step_kpc=0.05,
            max_length_kpc=10.0,
        )
    assert "still inside" in caplog.text
    np.testing.assert_allclose(np.linalg.norm(final, axis=1), 1.0)


def test_default_step_error_is_small_against_the_lens_pixel(jf12):
    # Exit directions with the default step against a step four times finer: the
    # error must stay far below the ~0.9 degree pixel of the nside-64 lens
    # (benchmarks/propagation_speed.py measures it on finer grids).
    directions = _sky_grid(4)
    coarse = backtrack(directions, 40.0, jf12)
    fine = backtrack(directions, 40.0, jf12, step_kpc=default_step_kpc(40.0) / 4)
    error_deg = np.degrees(deflection_angle(coarse, fine))
    assert np.median(error_deg) < 0.02
    assert error_deg.max() < 0.5
