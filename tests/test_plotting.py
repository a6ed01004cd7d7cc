"""Tests of the sky-map plots: Hammer projection, graph geometry and the figures."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from cosmic_rays import plotting  # noqa: E402

SQRT2 = np.sqrt(2.0)


def unit_vector(lon_deg, lat_deg):
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    return np.stack(
        [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1
    )


def isotropic_map(n_events=500, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n_events, 3))
    xyz /= np.linalg.norm(xyz, axis=1, keepdims=True)
    energy = np.log10(rng.uniform(4e19, 2e20, n_events)) / 20.5
    return np.concatenate([xyz, energy[:, None]], axis=1).astype(np.float32)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# Reference values from the Hammer formulas (Snyder 1987, USGS Prof. Paper 1395, p. 232):
# l = 90 deg, b = 0: x = 2 sqrt(2) sin(45 deg) / sqrt(1 + cos(45 deg)) = 1.530734.
@pytest.mark.parametrize(
    "lon_deg, lat_deg, expected_xy",
    [
        (0.0, 0.0, (0.0, 0.0)),
        (90.0, 0.0, (-1.5307337, 0.0)),
        (-90.0, 0.0, (1.5307337, 0.0)),
        (0.0, 90.0, (0.0, SQRT2)),
        (123.0, -90.0, (0.0, -SQRT2)),
        (0.0, 45.0, (0.0, SQRT2 * np.sin(np.pi / 4) / np.sqrt(1 + np.cos(np.pi / 4)))),
    ],
)
def test_hammer_reference_values(lon_deg, lat_deg, expected_xy):
    x, y = plotting.hammer_xy(np.radians(lon_deg), np.radians(lat_deg))
    np.testing.assert_allclose([x, y], expected_xy, atol=1e-6)


def test_longitude_increases_to_the_left():
    x, _ = plotting.hammer_xy(np.radians([60.0, 30.0, 0.0, -30.0, -60.0]), np.zeros(5))
    assert np.all(np.diff(x) > 0)


def test_seam_is_the_left_and_right_edge():
    x, _ = plotting.hammer_xy(np.radians([179.99, -179.99]), np.zeros(2))
    np.testing.assert_allclose(x, [-2 * SQRT2, 2 * SQRT2], atol=1e-3)


def test_longitude_is_wrapped():
    np.testing.assert_allclose(
        plotting.hammer_xy(np.radians(370.0), 0.3),
        plotting.hammer_xy(np.radians(10.0), 0.3),
    )


def test_projection_preserves_area():
    # Equal area: the Jacobian of (l, sin b) -> (x, y) is constant, and equal to
    # (ellipse area pi * 2 sqrt(2) * sqrt(2)) / (sphere area 4 pi) = 1.
    rng = np.random.default_rng(1)
    lon = rng.uniform(-3.0, 3.0, 200)
    sin_lat = rng.uniform(-0.95, 0.95, 200)
    step = 1e-6

    def xy(lon_value, sin_lat_value):
        return np.stack(plotting.hammer_xy(lon_value, np.arcsin(sin_lat_value)))

    d_lon = (xy(lon + step, sin_lat) - xy(lon - step, sin_lat)) / (2 * step)
    d_sin = (xy(lon, sin_lat + step) - xy(lon, sin_lat - step)) / (2 * step)
    jacobian = np.abs(d_lon[0] * d_sin[1] - d_lon[1] * d_sin[0])
    np.testing.assert_allclose(jacobian, 1.0, rtol=1e-5)


def test_projected_sky_fills_the_ellipse():
    x, y = plotting.hammer_xy_from_unit_vectors(isotropic_map(2000)[:, :3])
    assert np.all(x**2 / 8 + y**2 / 2 <= 1 + 1e-9)


def test_hammer_rejects_degrees():
    with pytest.raises(ValueError, match="radians"):
        plotting.hammer_xy(0.0, 45.0)


def test_lonlat_of_the_axes():
    lon, lat = plotting.lonlat_from_unit_vectors(np.eye(3))
    np.testing.assert_allclose(lon[:2], [0.0, np.pi / 2], atol=1e-12)
    np.testing.assert_allclose(lat, [0.0, 0.0, np.pi / 2], atol=1e-12)


def test_lonlat_round_trip():
    lon_deg = np.array([-170.0, -45.0, 0.0, 33.0, 150.0])
    lat_deg = np.array([-80.0, 10.0, 0.0, -33.0, 60.0])
    lon, lat = plotting.lonlat_from_unit_vectors(unit_vector(lon_deg, lat_deg))
    np.testing.assert_allclose(np.degrees(lon), lon_deg, atol=1e-9)
    np.testing.assert_allclose(np.degrees(lat), lat_deg, atol=1e-9)


def test_non_unit_vectors_are_rejected():
    with pytest.raises(ValueError, match="unit vectors"):
        plotting.lonlat_from_unit_vectors([[2.0, 0.0, 0.0]])


def test_energy_normalisation_inverts():
    # The data contract: normalised energy = log10(E / eV) / 20.5.
    normalised = np.log10([4e19, 1e20]) / 20.5
    np.testing.assert_allclose(
        plotting.energy_eev_from_normalised(normalised), [40, 100]
    )


def test_edges_from_neighbors():
    edges = plotting.edges_from_neighbors(np.array([[1, 2], [0, 2], [1, 0]]))
    np.testing.assert_array_equal(
        edges, [[0, 1], [0, 2], [1, 0], [1, 2], [2, 1], [2, 0]]
    )


@pytest.mark.parametrize(
    "indices, message",
    [
        (np.array([[1, 5], [0, 1]]), "expected 0 to 1"),
        (np.array([1, 0]), "shape"),
        (np.array([[1.0], [0.0]]), "integer"),
    ],
)
def test_bad_neighbor_indices_are_rejected(indices, message):
    with pytest.raises(ValueError, match=message):
        plotting.edges_from_neighbors(indices)


def test_edge_separation_on_the_equator():
    xyz = unit_vector(np.array([0.0, 10.0, 25.0]), np.zeros(3))
    separation = plotting.edge_separation_deg(xyz, np.array([[1], [0], [1]]))
    np.testing.assert_allclose(separation, [10.0, 10.0, 15.0], atol=1e-9)


def test_arc_follows_the_great_circle():
    pieces = plotting.great_circle_segments(
        unit_vector(0.0, 0.0)[None], unit_vector(90.0, 0.0)[None], n_samples=3
    )
    assert pieces.shape == (2, 2, 2)
    np.testing.assert_allclose(pieces[0, 1], plotting.hammer_xy(np.radians(45.0), 0.0))
    np.testing.assert_allclose(pieces[1, 1], plotting.hammer_xy(np.radians(90.0), 0.0))


def test_arc_across_the_seam_is_split_not_drawn_across_the_map():
    start, end = unit_vector(170.0, 0.0)[None], unit_vector(-170.0, 0.0)[None]
    pieces = plotting.great_circle_segments(start, end, n_samples=11)
    assert len(pieces) == 9
    piece_length = np.linalg.norm(pieces[:, 1] - pieces[:, 0], axis=1)
    assert piece_length.max() < 0.1
    x = pieces[..., 0]
    assert np.all(np.abs(x) > 2.5), "every piece lies near the left or right edge"
    assert (x < 0).any() and (x > 0).any(), "the arc appears at both edges"


def test_identical_end_points_give_a_point_not_nan():
    xyz = unit_vector(20.0, 10.0)[None]
    pieces = plotting.great_circle_segments(xyz, xyz, n_samples=4)
    assert np.all(np.isfinite(pieces))


def test_sky_map_draws_every_event_with_an_energy_colour_bar():
    fig, ax = plt.subplots()
    event_map = isotropic_map()
    scatter = plotting.plot_sky_map(ax, event_map)
    colorbar = fig.colorbar(scatter, ax=ax, label="energy E (EeV)")
    assert len(scatter.get_offsets()) == len(event_map)
    energy_eev = plotting.energy_eev_from_normalised(event_map[:, 3])
    np.testing.assert_allclose(
        np.sort(scatter.get_array()), np.sort(energy_eev), rtol=1e-6
    )
    assert "longitude" in ax.get_xlabel() and "latitude" in ax.get_ylabel()
    assert colorbar.ax.get_ylabel() == "energy E (EeV)"


def test_sky_map_marks_sources_and_skips_padding_rows():
    fig, ax = plt.subplots()
    sources = np.array([unit_vector(45.0, 20.0), np.zeros(3)])
    plotting.plot_sky_map(ax, isotropic_map(), source_directions=sources)
    stars = ax.collections[-1]
    np.testing.assert_allclose(
        stars.get_offsets()[0], plotting.hammer_xy(np.radians(45.0), np.radians(20.0))
    )
    assert len(stars.get_offsets()) == 1


def test_background_map_padding_draws_no_source_marker():
    fig, ax = plt.subplots()
    plotting.plot_sky_map(ax, isotropic_map(), source_directions=np.zeros((3, 3)))
    assert len(ax.collections) == 1 and ax.get_legend() is None


def test_sky_map_rejects_a_whole_data_set():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match=r"expected \(n_events, 4\)"):
        plotting.plot_sky_map(ax, np.zeros((3, 500, 4)))


def test_sky_map_pair_shares_one_colour_scale():
    signal, background = isotropic_map(seed=1), isotropic_map(seed=2)
    fig = plotting.plot_sky_map_pair(signal, background)
    sky_axes = fig.axes[:2]
    norms = [ax.collections[-1].norm for ax in sky_axes]
    assert len(fig.axes) == 3
    assert norms[0].vmin == norms[1].vmin and norms[0].vmax == norms[1].vmax
    assert [ax.get_title() for ax in sky_axes] == ["signal map", "isotropic map"]


def test_neighbor_graph_draws_each_edge_as_an_arc():
    rng = np.random.default_rng(3)
    xyz = unit_vector(rng.uniform(-60, 60, 50), rng.uniform(-60, 60, 50))
    neighbors = np.array([(np.arange(3) + i + 1) % 50 for i in range(50)])
    fig, ax = plt.subplots()
    plotting.plot_neighbor_graph(ax, xyz, neighbors, n_samples=5)
    (lines,) = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(lines.get_segments()) == 50 * 3 * 4, "3 edges per point, 4 pieces each"


def test_neighbor_graph_needs_matching_positions():
    fig, ax = plt.subplots()
    with pytest.raises(ValueError, match="same map"):
        plotting.plot_neighbor_graph(
            ax, isotropic_map(10)[:, :3], np.zeros((9, 2), int)
        )


def test_training_history_plot():
    history = {
        "loss": [0.7, 0.5],
        "accuracy": [0.5, 0.7],
        "val_loss": [0.69, 0.6],
        "val_accuracy": [0.55, 0.65],
    }
    fig = plotting.plot_training_history(history)
    loss_ax, accuracy_ax = fig.axes
    assert len(loss_ax.lines) == 2 and accuracy_ax.get_xlabel() == "epoch"
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [0.69, 0.6])


def test_training_history_without_accuracy_says_what_to_do():
    with pytest.raises(ValueError, match="metrics=\\['accuracy'\\]"):
        plotting.plot_training_history({"loss": [1.0]})


def test_roc_curve_plot():
    fig, ax = plt.subplots()
    plotting.plot_roc_curve(ax, [0, 0.1, 1], [0, 0.9, 1], 0.95)
    assert "AUC = 0.950" in ax.get_legend().get_texts()[0].get_text()
    assert "false positive" in ax.get_xlabel()
