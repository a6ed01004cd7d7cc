"""The galactic lens: builder, cache, deflections, and Liouville's theorem."""

import healpy as hp
import numpy as np
import pytest
from scipy import stats

import cosmic_rays
from cosmic_rays import lens as lens_module
from cosmic_rays.galactic_field import UniformField
from cosmic_rays.lens import Lens, build_lens, load_or_build_lens
from cosmic_rays.propagation import backtrack
from cosmic_rays.skymaps import SkyMapParameters, isotropic_directions, source_events

#: Rigidity edges whose first and third bin centres are 40 and 100 EV (the DESIGN.md
#: deflection references) and which cover the spectrum from 40 to 316 EeV for protons.
TEST_EDGES_EV = 40.0 / 2.5**0.25 * 2.5 ** (np.arange(7) / 2)


@pytest.fixture(scope="session")
def coarse_lens(tmp_path_factory):
    """JF12 lens at nside 16 (3.7 degree pixels), built once per test session."""
    cache = tmp_path_factory.getbasetemp() / "lens_cache"
    return load_or_build_lens(16, TEST_EDGES_EV, cache_dir=cache, progress=False)


def pixel_centres(nside):
    return np.stack(hp.pix2vec(nside, np.arange(hp.nside2npix(nside)), nest=True), -1)


def test_lens_in_zero_field_maps_every_pixel_onto_itself():
    lens = build_lens(
        4, [40.0, 100.0, 300.0], UniformField((0.0, 0.0, 0.0)), progress=False
    )
    for b in range(lens.n_bins):
        np.testing.assert_allclose(lens.directions[b], pixel_centres(4), atol=1e-6)


@pytest.mark.parametrize(
    "bin_index, rigidity_ev, expected_deg", [(0, 40, 8.0), (2, 100, 3.0)]
)
def test_median_deflection_over_the_sky_matches_design(
    coarse_lens, bin_index, rigidity_ev, expected_deg
):
    # DESIGN.md: median deflection of protons in JF12, about 8 deg at 40 EV, 3 at 100 EV.
    assert coarse_lens.rigidity_centres_ev[bin_index] == pytest.approx(rigidity_ev)
    median_deg = np.degrees(np.median(coarse_lens.deflection_rad(bin_index)))
    assert median_deg == pytest.approx(expected_deg, rel=0.2)


def test_deflection_shrinks_with_rigidity(coarse_lens):
    medians = [
        np.median(coarse_lens.deflection_rad(b)) for b in range(coarse_lens.n_bins)
    ]
    assert np.all(np.diff(medians) < 0)


def test_saved_lens_loads_back_within_float16_precision(coarse_lens, tmp_path):
    coarse_lens.save(tmp_path / "lens.npz")
    loaded = Lens.load(tmp_path / "lens.npz")
    assert loaded.key == coarse_lens.key
    np.testing.assert_allclose(loaded.directions, coarse_lens.directions, atol=1e-3)
    np.testing.assert_allclose(
        np.linalg.norm(loaded.directions, axis=-1), 1.0, atol=1e-6
    )


def test_cached_lens_is_not_rebuilt(coarse_lens, tmp_path_factory, monkeypatch):
    def no_build(*args, **kwargs):
        raise AssertionError("the cached lens should have been used")

    monkeypatch.setattr(lens_module, "build_lens", no_build)
    cache = tmp_path_factory.getbasetemp() / "lens_cache"
    again = load_or_build_lens(16, TEST_EDGES_EV, cache_dir=cache)
    assert again.key == coarse_lens.key
    assert not any(p.name.endswith(".tmp") for p in cache.iterdir())


def test_default_cache_lives_under_data_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(cosmic_rays, "DATA_DIR", tmp_path)
    load_or_build_lens(2, [40.0, 300.0], UniformField((0.0, 0.0, 0.0)), progress=False)
    assert len(list((tmp_path / "lens").glob("lens_nside2_*.npz"))) == 1


def test_packaged_lens_agrees_with_fresh_backtracking():
    packaged = sorted(lens_module.PACKAGED_LENS_DIR.glob("lens_*.npz"))
    if not packaged:
        pytest.skip("no packaged lens in cosmic_rays/lens_data")
    for path in packaged:
        lens = Lens.load(path)
        pixels = np.random.default_rng(0).choice(hp.nside2npix(lens.nside), 24)
        observed = pixel_centres(lens.nside)[pixels]
        for b in (0, lens.n_bins - 1):
            rigidity = np.full(len(pixels), lens.rigidity_centres_ev[b])
            fresh = backtrack(observed, rigidity)
            angle = np.arccos(
                np.clip(np.sum(fresh * lens.directions[b, pixels], -1), -1, 1)
            )
            assert np.degrees(angle).max() < 0.3, f"{path.name} is stale: rebuild it"


def test_magnification_is_one_without_a_field():
    nside = 16
    edges = [40.0, 300.0]
    identity = Lens(nside, edges, pixel_centres(nside)[None], "none")
    sources = isotropic_directions(np.random.default_rng(2), 200)
    _, weights, counts = identity.pixel_weights(sources, 0, sigma_rad=0.1)
    magnification = np.add.reduceat(
        weights, np.concatenate([[0], np.cumsum(counts)[:-1]])
    )
    # 3-sigma truncation keeps 1 - exp(-4.5) = 98.9 % of the von Mises-Fisher mass.
    assert np.all(np.abs(magnification - 0.989) < 0.03)


def test_rigidity_outside_the_lens_is_refused(coarse_lens):
    with pytest.raises(ValueError, match="outside the lens range"):
        coarse_lens.bin_index([5.0])


def test_non_lens_file_is_refused(tmp_path):
    np.savez(tmp_path / "other.npz", data=np.zeros(3))
    with pytest.raises(ValueError, match="not a lens file"):
        Lens.load(tmp_path / "other.npz")


def isotropy_p_value(directions, cluster, nside=2):
    """Cluster-robust chi-square test that directions are isotropic.

    Events of one source land close together, so counts in coarse pixels scatter more
    than Poisson; the covariance is therefore estimated from the per-source histograms
    (a Wald test with the sources as independent units): T ~ chi2(npix - 1).
    """
    npix = hp.nside2npix(nside)
    pixel = hp.vec2pix(nside, *np.reshape(directions, (-1, 3)).T)
    unit = np.unique(np.ravel(cluster), return_inverse=True)[1]
    histogram = np.zeros((unit.max() + 1, npix))
    np.add.at(histogram, (unit, pixel), 1.0)
    deviation = histogram - histogram.sum(axis=1, keepdims=True) / npix
    total = deviation.sum(axis=0)
    statistic = total @ np.linalg.pinv(deviation.T @ deviation) @ total
    return stats.chi2.sf(statistic, npix - 1)


def test_isotropic_sources_give_isotropic_arrivals_liouville(coarse_lens):
    # 40 maps x 500 sources at isotropic directions, 1000 events each. False-alarm rate
    # of the threshold: 0.1 % (the seed is fixed, so the outcome is reproducible).
    rng = np.random.default_rng(11)
    parameters = SkyMapParameters(lens_nside=16)
    sources = isotropic_directions(rng, (40, 500))
    directions, _, source, _ = source_events(
        coarse_lens, sources, 1000, parameters, rng
    )
    cluster = np.arange(40)[:, None] * 500 + source
    assert isotropy_p_value(directions, cluster) > 1e-3


def test_nearest_image_sampling_breaks_isotropy(coarse_lens):
    # Negative control for the test above: draw the extragalactic direction first and
    # take the observed pixel whose lens image is nearest. That weights pixels by the
    # inverse Jacobian of the lens, and the same statistic must catch it.
    rng = np.random.default_rng(12)
    outside = isotropic_directions(rng, 40000)
    _, nearest = coarse_lens.tree(0).query(outside)
    observed = pixel_centres(coarse_lens.nside)[nearest]
    assert isotropy_p_value(observed, np.arange(len(observed))) < 1e-6
