"""Energies, exposure, background and signal sky maps."""

import healpy as hp
import numpy as np
import pytest
from scipy import integrate, stats

from cosmic_rays.lens import load_or_build_lens
from cosmic_rays.skymaps import (
    SkyMapParameters,
    auger_exposure,
    background_directions,
    isotropic_directions,
    normalised_energy,
    sample_energies_eev,
    simulate_maps,
    source_events,
    spectrum_flux,
)

#: Same lens as in test_lens.py (shared through the session's cache folder).
TEST_EDGES_EV = 40.0 / 2.5**0.25 * 2.5 ** (np.arange(7) / 2)
COARSE = SkyMapParameters(lens_nside=16)


@pytest.fixture(scope="session")
def coarse_lens(tmp_path_factory):
    cache = tmp_path_factory.getbasetemp() / "lens_cache"
    return load_or_build_lens(16, TEST_EDGES_EV, cache_dir=cache, progress=False)


def angle_deg(a, b):
    return np.degrees(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)))


def spread_deg(directions):
    mean = directions.mean(axis=0)
    return np.median(angle_deg(directions, mean / np.linalg.norm(mean)))


@pytest.mark.parametrize("energy_eev, slope", [(20.0, -3.05), (150.0, -5.1)])
def test_auger_spectrum_has_the_published_slopes(energy_eev, slope):
    # Phys. Rev. D 102, 062005 (2020): index 3.05 below the 46 EeV suppression, 5.1 above.
    step = 1e-4
    local = np.diff(np.log(spectrum_flux(energy_eev * np.exp([0, step])))) / step
    assert local[0] == pytest.approx(slope, abs=0.01)


def test_sampled_energies_follow_the_auger_spectrum():
    def flux(
        energy,
    ):  # PRD 102, 062005, eq. 3 above the ankle, written out independently
        return energy**-3.05 / (1 + (energy / 46.0) ** 20) ** 0.1025

    total = integrate.quad(flux, 40, 10**2.5, points=[46])[0]
    expected = integrate.quad(flux, 80, 10**2.5)[0] / total
    energies = sample_energies_eev(np.random.default_rng(0), 200_000)
    observed = np.mean(energies > 80)
    sigma = np.sqrt(expected * (1 - expected) / energies.size)
    assert abs(observed - expected) < 4 * sigma
    assert energies.min() >= 40 and energies.max() <= 10**2.5


def test_power_law_option_matches_the_analytic_distribution():
    gamma, low, high = 2.7, 40.0, 10**2.5
    parameters = SkyMapParameters(spectrum=gamma)
    energies = sample_energies_eev(np.random.default_rng(1), 20_000, parameters)

    def cdf(energy):
        return (low ** (1 - gamma) - energy ** (1 - gamma)) / (
            low ** (1 - gamma) - high ** (1 - gamma)
        )

    assert stats.kstest(energies, cdf).pvalue > 1e-3  # false-alarm rate 0.1 %


def test_normalised_energy_matches_the_original_data_set():
    # log10(E / eV) / 20.5: 40 EeV -> 19.602 / 20.5, 10^20.5 eV -> 1.
    np.testing.assert_allclose(
        normalised_energy([40.0, 10**2.5]), [0.956198, 1.0], rtol=1e-6
    )


def hour_angle_integral(declination_rad, latitude_rad, max_zenith_rad):
    """Exposure ~ integral over a sidereal day of cos(zenith) where zenith <= max."""
    hour = np.linspace(-np.pi, np.pi, 200_001)
    cos_zenith = np.cos(latitude_rad) * np.cos(declination_rad) * np.cos(hour) + np.sin(
        latitude_rad
    ) * np.sin(declination_rad)
    visible = cos_zenith >= np.cos(max_zenith_rad)
    return np.trapezoid(np.where(visible, cos_zenith, 0.0), hour)


def equatorial_to_galactic(declination_deg, right_ascension_deg=30.0):
    vector = hp.ang2vec(
        np.radians(90 - declination_deg), np.radians(right_ascension_deg)
    )
    return np.asarray(hp.Rotator(coord=["C", "G"])(np.reshape(vector, (-1, 3)).T)).T


def test_auger_exposure_matches_integration_over_the_day():
    # Sommers 2001 closed form against brute-force integration; site at -35.2 deg.
    declinations = np.array([-89.0, -60.0, -35.2, 0.0, 20.0, 30.0])
    exposure = auger_exposure(equatorial_to_galactic(declinations))
    latitude, zenith = np.radians(-35.2), np.radians(60.0)
    reference = np.array(
        [hour_angle_integral(np.radians(d), latitude, zenith) for d in declinations]
    )
    reference /= hour_angle_integral(latitude, latitude, zenith)
    np.testing.assert_allclose(exposure, reference, atol=1e-4)
    assert exposure[2] == pytest.approx(1.0) and exposure[-1] == 0.0


def test_background_with_auger_exposure_stays_south_of_declination_25_degrees():
    directions = background_directions(np.random.default_rng(4), 20_000, "auger")
    equatorial = np.asarray(hp.Rotator(coord=["G", "C"])(directions.T)).T
    assert np.degrees(np.arcsin(equatorial[:, 2])).max() < -35.2 + 60 + 1e-6


def test_isotropic_directions_have_no_dipole():
    directions = isotropic_directions(np.random.default_rng(5), 30_000)
    # Each component of the mean of N isotropic unit vectors has variance 1 / (3 N).
    assert np.all(np.abs(directions.mean(axis=0)) < 4 / np.sqrt(3 * 30_000))


def test_street_is_energy_ordered(coarse_lens):
    # 20 sources with 2000 events each; a large smearing (0.5 rad at 10 EV) so that the
    # 3.7 degree pixels of the coarse lens do not hide the shrinking spread.
    rng = np.random.default_rng(3)
    parameters = SkyMapParameters(lens_nside=16, smearing_rad_at_10ev=0.5)
    sources = isotropic_directions(rng, (20, 1))
    directions, energy, _, sources = source_events(
        coarse_lens, sources, 2000, parameters, rng
    )
    for m in range(20):
        low, high = energy[m] < 45, energy[m] > 80
        assert spread_deg(directions[m, high]) < spread_deg(directions[m, low])
        mean_low = directions[m, low].mean(axis=0)
        mean_high = directions[m, high].mean(axis=0)
        offset_low = angle_deg(mean_low / np.linalg.norm(mean_low), sources[m, 0])
        offset_high = angle_deg(mean_high / np.linalg.norm(mean_high), sources[m, 0])
        assert offset_high < offset_low


def test_same_seed_gives_the_same_maps_and_another_seed_does_not(coarse_lens):
    first = simulate_maps(10, COARSE, seed=7, lens=coarse_lens, progress=False)
    second = simulate_maps(10, COARSE, seed=7, lens=coarse_lens, progress=False)
    other = simulate_maps(10, COARSE, seed=8, lens=coarse_lens, progress=False)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
    assert not np.array_equal(first["data"], other["data"])


def test_maps_are_balanced_and_carry_the_requested_source_events(coarse_lens):
    parameters = SkyMapParameters(lens_nside=16, n_sources=4, signal_fraction=0.2)
    maps = simulate_maps(
        21, parameters, seed=1, lens=coarse_lens, progress=False, chunk_maps=8
    )
    assert maps["data"].shape == (21, 500, 4) and maps["data"].dtype == np.float32
    assert maps["label"].sum() == 10
    from_sources = (maps["source_index"] >= 0).sum(axis=1)
    np.testing.assert_array_equal(from_sources, np.where(maps["label"] == 1, 100, 0))
    signal = maps["label"] == 1
    np.testing.assert_allclose(
        np.linalg.norm(maps["source_directions"][signal], axis=-1), 1.0, atol=1e-6
    )
    assert np.all(maps["source_directions"][~signal] == 0)
    # Source events are shuffled among the background, not stored first.
    assert maps["source_index"][signal][:, :100].mean() < 0.5


def test_source_events_arrive_near_their_source(coarse_lens):
    maps = simulate_maps(8, COARSE, seed=2, lens=coarse_lens, progress=False)
    for m in np.flatnonzero(maps["label"]):
        index = maps["source_index"][m]
        for k in np.unique(index[index >= 0]):
            events = maps["data"][m, index == k, :3]
            # Deflection below 20 degrees at 40 EV for almost all of the sky, plus
            # smearing and the coarse pixels.
            assert np.median(angle_deg(events, maps["source_directions"][m, k])) < 25


def test_lens_that_does_not_cover_the_energy_range_is_refused(coarse_lens):
    iron = SkyMapParameters(lens_nside=16, charge=26)
    sources = isotropic_directions(np.random.default_rng(0), (1, 1))
    with pytest.raises(ValueError, match="build a lens"):
        source_events(coarse_lens, sources, 5, iron, np.random.default_rng(0))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"n_events": 0}, "n_events=0"),
        ({"signal_fraction": 1.5}, "signal_fraction=1.5"),
        ({"exposure": "ta"}, "exposure='ta'"),
        ({"spectrum": "flat"}, "spectrum='flat'"),
        ({"energy_threshold_eev": 400.0}, "threshold < cutoff"),
    ],
)
def test_bad_parameters_are_named(change, message):
    with pytest.raises(ValueError, match="invalid sky-map parameters") as error:
        SkyMapParameters(**change)
    assert message in str(error.value)


def test_auger_exposure_applies_to_source_events_too(coarse_lens):
    parameters = SkyMapParameters(lens_nside=16, exposure="auger", signal_fraction=0.5)
    maps = simulate_maps(6, parameters, seed=4, lens=coarse_lens, progress=False)
    signal = maps["data"][maps["source_index"] >= 0][:, :3]
    equatorial = np.asarray(hp.Rotator(coord=["G", "C"])(signal.T)).T
    # Sub-pixel placement can stray half a coarse pixel (about 2 degrees) past the edge.
    assert np.degrees(np.arcsin(equatorial[:, 2])).max() < -35.2 + 60 + 2.5
