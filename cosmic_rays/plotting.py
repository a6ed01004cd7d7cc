"""Sky maps and neighbour graphs in the Hammer equal-area projection.

Galactic coordinates follow the data contract: unit vectors with x towards the Galactic
centre (l = 0, b = 0) and z towards the Galactic north pole. Maps are drawn as
astronomers draw them: l = 0 in the middle and galactic longitude increasing to the left,
so l = +90 deg lies left of centre and the seam l = +-180 deg is the left and right edge.

The Hammer projection (Hammer 1892; Snyder 1987, "Map projections: a working manual",
USGS Professional Paper 1395, p. 232) maps longitude l and latitude b to

    x = 2 sqrt(2) cos(b) sin(l / 2) / sqrt(1 + cos(b) cos(l / 2))
    y = sqrt(2) sin(b) / sqrt(1 + cos(b) cos(l / 2))

and preserves areas, so an isotropic sky fills the ellipse x^2 / 8 + y^2 / 2 <= 1
uniformly. Here x is mirrored (x -> -x) to put increasing longitude on the left.
"""

import logging

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import LogNorm

logger = logging.getLogger(__name__)

#: The data set stores energy as log10(E / eV) / 20.5 (DESIGN.md, data contract).
ENERGY_NORMALISATION = 20.5

_UNIT_TOLERANCE = 1e-3


def _as_unit_vectors(xyz, name):
    """Check that ``xyz`` holds unit vectors of shape (..., 3) and return it as floats."""
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim < 1 or xyz.shape[-1] != 3:
        raise ValueError(
            f"{name} has shape {xyz.shape}; expected (..., 3) unit vectors x, y, z in "
            "galactic coordinates: pass the first three columns of a map, map[:, :3]."
        )
    if not np.all(np.isfinite(xyz)):
        raise ValueError(
            f"{name} contains NaN or infinite values; expected unit vectors."
        )
    norms = np.linalg.norm(xyz, axis=-1)
    if xyz.size and np.max(np.abs(norms - 1.0)) > _UNIT_TOLERANCE:
        raise ValueError(
            f"{name} holds vectors of length {norms.min():.4g} to {norms.max():.4g}; "
            "expected unit vectors (directions on the sky). Normalise them first."
        )
    return xyz


def lonlat_from_unit_vectors(xyz):
    """Galactic longitude and latitude of unit vectors.

    l = atan2(y, x) and b = arcsin(z), with x towards the Galactic centre.

    Parameters
    ----------
    xyz : array_like, shape (..., 3)
        Unit vectors in galactic coordinates.

    Returns
    -------
    lon_rad, lat_rad : ndarray, shape (...)
        Longitude in (-pi, pi] and latitude in [-pi/2, pi/2], in radians.
    """
    xyz = _as_unit_vectors(xyz, "xyz")
    lon_rad = np.arctan2(xyz[..., 1], xyz[..., 0])
    lat_rad = np.arcsin(np.clip(xyz[..., 2], -1.0, 1.0))
    return lon_rad, lat_rad


def hammer_xy(lon_rad, lat_rad):
    """Hammer equal-area projection with longitude increasing to the left.

    Parameters
    ----------
    lon_rad : array_like
        Galactic longitude in radians; any value, wrapped into (-pi, pi].
    lat_rad : array_like
        Galactic latitude in radians, in [-pi/2, pi/2].

    Returns
    -------
    x, y : ndarray
        Projected coordinates inside the ellipse x^2 / 8 + y^2 / 2 <= 1; x > 0 for
        negative longitude (right of centre), y > 0 in the north.
    """
    lon_rad = np.asarray(lon_rad, dtype=np.float64)
    lat_rad = np.asarray(lat_rad, dtype=np.float64)
    if np.any(np.abs(lat_rad) > np.pi / 2 + 1e-9):
        raise ValueError(
            "latitude outside [-pi/2, pi/2]; hammer_xy expects radians, not degrees: "
            "convert with np.radians."
        )
    lon_rad = np.angle(np.exp(1j * lon_rad))
    half_lon = lon_rad / 2
    scale = np.sqrt(1.0 + np.cos(lat_rad) * np.cos(half_lon))
    x = 2 * np.sqrt(2) * np.cos(lat_rad) * np.sin(half_lon) / scale
    y = np.sqrt(2) * np.sin(lat_rad) / scale
    return -x, y


def hammer_xy_from_unit_vectors(xyz):
    """Hammer x, y (longitude increasing to the left) of unit vectors, shape (..., 3)."""
    return hammer_xy(*lonlat_from_unit_vectors(xyz))


def energy_eev_from_normalised(energy_normalised):
    """Energy in EeV from the data set's normalised energy log10(E / eV) / 20.5."""
    exponent = ENERGY_NORMALISATION * np.asarray(energy_normalised, dtype=np.float64)
    return 10.0 ** (exponent - 18.0)


def draw_sky_frame(ax, *, lon_step_deg=60, lat_step_deg=30):
    """Draw the Hammer outline, a graticule in degrees and the axis labels.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        A plain Cartesian axes; its ticks are replaced by graticule labels.
    lon_step_deg, lat_step_deg : float
        Spacing of the meridians and parallels in degrees.
    """
    grid_style = dict(color="0.75", linewidth=0.6, zorder=0)
    lat_line = np.radians(np.linspace(-90, 90, 181))
    for lon_deg in np.arange(-180 + lon_step_deg, 180, lon_step_deg):
        ax.plot(
            *hammer_xy(np.full_like(lat_line, np.radians(lon_deg)), lat_line),
            **grid_style,
        )
    lon_line = np.radians(np.linspace(-180, 180, 361))
    for lat_deg in np.arange(-90 + lat_step_deg, 90, lat_step_deg):
        ax.plot(
            *hammer_xy(lon_line, np.full_like(lon_line, np.radians(lat_deg))),
            **grid_style,
        )

    angle = np.linspace(0, 2 * np.pi, 361)
    ax.plot(
        2 * np.sqrt(2) * np.cos(angle),
        np.sqrt(2) * np.sin(angle),
        color="0.3",
        linewidth=1.0,
        zorder=0,
    )

    label_style = dict(fontsize=7, color="0.4", ha="center", va="center")
    for lon_deg in np.arange(-180 + lon_step_deg, 180, lon_step_deg):
        x, y = hammer_xy(np.radians(lon_deg), 0.0)
        ax.text(x, y - 0.08, f"{lon_deg:g}°", **label_style)
    for lat_deg in np.arange(-90 + lat_step_deg, 90, lat_step_deg):
        if lat_deg == 0:
            continue
        x, y = hammer_xy(np.radians(179.9), np.radians(lat_deg))
        ax.text(x - 0.2, y, f"{lat_deg:g}°", **label_style)

    ax.set_xlim(-2 * np.sqrt(2) - 0.05, 2 * np.sqrt(2) + 0.05)
    ax.set_ylim(-np.sqrt(2) - 0.05, np.sqrt(2) + 0.05)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("galactic longitude l (deg), increasing to the left")
    ax.set_ylabel("galactic latitude b (deg)")


def _check_event_map(event_map):
    event_map = np.asarray(event_map)
    if event_map.ndim != 2 or event_map.shape[1] != 4:
        raise ValueError(
            f"event map has shape {event_map.shape}; expected (n_events, 4) with columns "
            "x, y, z, normalised energy: pass one map, data[i], not the whole data set."
        )
    _as_unit_vectors(event_map[:, :3], "event map columns x, y, z")
    return event_map


def plot_sky_map(
    ax,
    event_map,
    *,
    source_directions=None,
    energy_range_eev=None,
    cmap="viridis",
    marker_size=10,
    title=None,
):
    """Scatter one sky map on a Hammer frame, coloured by energy.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Plain Cartesian axes to draw on.
    event_map : array_like, shape (n_events, 4)
        Unit vectors x, y, z (galactic) and normalised energy log10(E / eV) / 20.5.
    source_directions : array_like, shape (n_sources, 3), optional
        Unit vectors of the true sources outside the Galaxy, marked with stars. Rows of
        zeros (the data set's padding for absent sources) are skipped.
    energy_range_eev : tuple of float, optional
        (lowest, highest) energy of the logarithmic colour scale in EeV; by default the
        range of this map.
    cmap : str
        Matplotlib colour map.
    marker_size : float
        Marker area in points^2.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.collections.PathCollection
        The scatter, for ``fig.colorbar`` (label it with the energy unit, EeV).
    """
    event_map = _check_event_map(event_map)
    draw_sky_frame(ax)

    energy_eev = energy_eev_from_normalised(event_map[:, 3])
    if energy_range_eev is None:
        energy_range_eev = (energy_eev.min(), energy_eev.max())
    order = np.argsort(energy_eev)
    x, y = hammer_xy_from_unit_vectors(event_map[order, :3])
    scatter = ax.scatter(
        x,
        y,
        c=energy_eev[order],
        s=marker_size,
        cmap=cmap,
        norm=LogNorm(*energy_range_eev),
        linewidths=0,
        zorder=2,
    )

    sources = np.zeros((0, 3))
    if source_directions is not None:
        sources = np.asarray(source_directions, dtype=np.float64).reshape(-1, 3)
        sources = sources[np.linalg.norm(sources, axis=1) > 0]
    if len(sources):
        sources = _as_unit_vectors(sources, "source_directions")
        sx, sy = hammer_xy_from_unit_vectors(sources)
        ax.scatter(
            sx,
            sy,
            marker="*",
            s=180,
            facecolor="none",
            edgecolor="crimson",
            linewidths=1.3,
            zorder=3,
            label="source (outside the Galaxy)",
        )
        ax.legend(loc="lower right", fontsize=7, frameon=False)
    if title is not None:
        ax.set_title(title)
    return scatter


def plot_sky_map_pair(
    signal_map, background_map, *, source_directions=None, figsize=(13, 4.2)
):
    """A signal map beside an isotropic one, sharing one energy colour bar.

    Parameters
    ----------
    signal_map, background_map : array_like, shape (n_events, 4)
        One map with source events and one isotropic map (x, y, z, normalised energy).
    source_directions : array_like, shape (n_sources, 3), optional
        The signal map's true source directions, marked with stars.
    figsize : tuple of float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    both = np.concatenate(
        [_check_event_map(signal_map), _check_event_map(background_map)]
    )
    energy_eev = energy_eev_from_normalised(both[:, 3])
    energy_range_eev = (energy_eev.min(), energy_eev.max())

    fig, (ax_signal, ax_background) = plt.subplots(
        1, 2, figsize=figsize, layout="constrained"
    )
    scatter = plot_sky_map(
        ax_signal,
        signal_map,
        source_directions=source_directions,
        energy_range_eev=energy_range_eev,
        title="signal map",
    )
    plot_sky_map(
        ax_background,
        background_map,
        energy_range_eev=energy_range_eev,
        title="isotropic map",
    )
    fig.colorbar(
        scatter, ax=[ax_signal, ax_background], shrink=0.8, label="energy E (EeV)"
    )
    return fig


def edges_from_neighbors(neighbor_indices):
    """Directed edges (i, j) of a k-nearest-neighbour graph.

    Parameters
    ----------
    neighbor_indices : array_like of int, shape (n_points, k)
        Row i lists the k neighbours j of point i, as ``EdgeConv.neighbors`` returns
        them for one map.

    Returns
    -------
    ndarray of int, shape (n_points * k, 2)
        One row (i, j) per edge, grouped by the central point i.
    """
    neighbor_indices = np.asarray(neighbor_indices)
    if neighbor_indices.ndim != 2 or not np.issubdtype(
        neighbor_indices.dtype, np.integer
    ):
        raise ValueError(
            f"neighbor_indices has shape {neighbor_indices.shape} and dtype "
            f"{neighbor_indices.dtype}; expected integer indices of shape (n_points, k) "
            "for one map: take one map of EdgeConv.neighbors(...), e.g. result[0]."
        )
    n_points, k = neighbor_indices.shape
    if neighbor_indices.size and (
        neighbor_indices.min() < 0 or neighbor_indices.max() >= n_points
    ):
        raise ValueError(
            f"neighbor_indices holds indices from {neighbor_indices.min()} to "
            f"{neighbor_indices.max()}; expected 0 to {n_points - 1} (one map of "
            f"{n_points} points)."
        )
    centres = np.repeat(np.arange(n_points), k)
    return np.stack([centres, neighbor_indices.reshape(-1)], axis=1)


def edge_separation_deg(xyz, neighbor_indices):
    """Angle on the sky between each point and each of its graph neighbours.

    Parameters
    ----------
    xyz : array_like, shape (n_points, 3)
        Unit vectors of the points.
    neighbor_indices : array_like of int, shape (n_points, k)
        Neighbour indices, as in `edges_from_neighbors`.

    Returns
    -------
    ndarray, shape (n_points * k,)
        Great-circle separation of every edge in degrees, in the order of
        `edges_from_neighbors`.
    """
    xyz = _as_unit_vectors(xyz, "xyz")
    edges = edges_from_neighbors(neighbor_indices)
    if len(xyz) != len(neighbor_indices):
        raise ValueError(
            f"xyz has {len(xyz)} points but neighbor_indices has {len(neighbor_indices)} "
            "rows; pass the positions and the neighbours of the same map."
        )
    cosine = np.einsum("ij,ij->i", xyz[edges[:, 0]], xyz[edges[:, 1]])
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def great_circle_segments(start_xyz, end_xyz, n_samples=12):
    """Short straight pieces, in Hammer x, y, that follow great-circle arcs on the sky.

    Each arc from ``start_xyz[e]`` to ``end_xyz[e]`` is sampled at ``n_samples``
    points (spherical linear interpolation) and projected; the piece of an arc that
    crosses the seam at l = +-180 deg would otherwise run across the whole map, so it
    is left out and the arc is drawn in two parts, one at each edge of the map.

    Parameters
    ----------
    start_xyz, end_xyz : array_like, shape (n_edges, 3)
        Unit vectors of the two ends of each edge.
    n_samples : int
        Points per arc, at least 2.

    Returns
    -------
    ndarray, shape (n_pieces, 2, 2)
        Line pieces ((x0, y0), (x1, y1)) for `matplotlib.collections.LineCollection`.
    """
    start_xyz = _as_unit_vectors(start_xyz, "start_xyz").reshape(-1, 3)
    end_xyz = _as_unit_vectors(end_xyz, "end_xyz").reshape(-1, 3)
    if start_xyz.shape != end_xyz.shape:
        raise ValueError(
            f"start_xyz has shape {start_xyz.shape} and end_xyz {end_xyz.shape}; "
            "expected one start and one end per edge."
        )
    if n_samples < 2:
        raise ValueError(
            f"n_samples = {n_samples}; expected at least 2 points per arc."
        )

    cosine = np.clip(np.einsum("ij,ij->i", start_xyz, end_xyz), -1.0, 1.0)
    angle = np.arccos(cosine)[:, None, None]
    fraction = np.linspace(0.0, 1.0, n_samples)[None, :, None]
    sin_angle = np.sin(angle)
    nearly_parallel = sin_angle < 1e-9
    safe_sin = np.where(nearly_parallel, 1.0, sin_angle)
    weight_start = np.where(
        nearly_parallel, 1 - fraction, np.sin((1 - fraction) * angle) / safe_sin
    )
    weight_end = np.where(
        nearly_parallel, fraction, np.sin(fraction * angle) / safe_sin
    )
    arcs = weight_start * start_xyz[:, None, :] + weight_end * end_xyz[:, None, :]
    arcs /= np.linalg.norm(arcs, axis=-1, keepdims=True)

    lon_rad, lat_rad = lonlat_from_unit_vectors(arcs)
    x, y = hammer_xy(lon_rad, lat_rad)
    points = np.stack([x, y], axis=-1)
    pieces = np.stack([points[:, :-1], points[:, 1:]], axis=2).reshape(-1, 2, 2)
    crosses_seam = (np.abs(np.diff(lon_rad, axis=1)) > np.pi).reshape(-1)
    return pieces[~crosses_seam]


def plot_neighbor_graph(
    ax,
    xyz,
    neighbor_indices,
    *,
    energy_eev=None,
    title=None,
    edge_color="0.25",
    n_samples=12,
):
    """Draw a k-nearest-neighbour graph of one map on the projected sky.

    Edges follow great circles and are cut at the l = +-180 deg seam, so a graph built
    from sky positions shows short local links, while a graph built in a learned
    feature space links points far apart on the sky.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Plain Cartesian axes to draw on.
    xyz : array_like, shape (n_points, 3)
        Sky positions (unit vectors) of the map's events.
    neighbor_indices : array_like of int, shape (n_points, k)
        The neighbours of each event, e.g. ``EdgeConv.neighbors(inputs)[0]``.
    energy_eev : array_like, shape (n_points,), optional
        Energies in EeV to colour the events; grey if omitted.
    title : str, optional
        Axes title.
    edge_color : color
        Colour of the edges.
    n_samples : int
        Points per drawn arc.

    Returns
    -------
    matplotlib.collections.PathCollection
        The events' scatter (for a colour bar when ``energy_eev`` is given).
    """
    xyz = _as_unit_vectors(xyz, "xyz")
    edges = edges_from_neighbors(neighbor_indices)
    if len(xyz) != len(neighbor_indices):
        raise ValueError(
            f"xyz has {len(xyz)} points but neighbor_indices has {len(neighbor_indices)} "
            "rows; pass the positions and the neighbours of the same map."
        )
    draw_sky_frame(ax)
    pieces = great_circle_segments(xyz[edges[:, 0]], xyz[edges[:, 1]], n_samples)
    ax.add_collection(
        LineCollection(pieces, colors=edge_color, linewidths=0.4, alpha=0.6, zorder=1)
    )

    x, y = hammer_xy_from_unit_vectors(xyz)
    if energy_eev is None:
        scatter = ax.scatter(x, y, s=6, color="0.5", linewidths=0, zorder=2)
    else:
        energy_eev = np.asarray(energy_eev, dtype=np.float64)
        scatter = ax.scatter(
            x,
            y,
            s=8,
            c=energy_eev,
            cmap="viridis",
            norm=LogNorm(energy_eev.min(), energy_eev.max()),
            linewidths=0,
            zorder=2,
        )
    if title is not None:
        ax.set_title(title)
    return scatter


def plot_training_history(history, figsize=(11, 3.8)):
    """Loss and accuracy per epoch for training and validation data.

    Parameters
    ----------
    history : dict or keras.callbacks.History
        ``History.history``-like mapping with "loss", "accuracy" and optionally
        "val_loss" and "val_accuracy", one value per epoch.
    figsize : tuple of float
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
    """
    history = getattr(history, "history", history)
    missing = [key for key in ("loss", "accuracy") if key not in history]
    if missing:
        raise ValueError(
            f"history lacks {missing}; it has {sorted(history)}. Compile the model with "
            "metrics=['accuracy'] and pass model.fit(...).history."
        )
    fig, axes = plt.subplots(1, 2, figsize=figsize, layout="constrained")
    for ax, key, label in zip(
        axes, ("loss", "accuracy"), ("loss (cross-entropy)", "accuracy")
    ):
        epochs = np.arange(1, len(history[key]) + 1)
        ax.plot(epochs, history[key], marker="o", label="training")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    return fig


def plot_roc_curve(ax, false_positive_rate, true_positive_rate, auc_value):
    """Draw a ROC curve (signal efficiency against background acceptance).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes to draw on.
    false_positive_rate, true_positive_rate : array_like
        As returned by ``sklearn.metrics.roc_curve``.
    auc_value : float
        Area under the curve, shown in the legend.
    """
    ax.plot(
        false_positive_rate, true_positive_rate, label=f"DGCNN (AUC = {auc_value:.3f})"
    )
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", label="random guess")
    ax.set_xlabel("false positive rate (isotropic maps called signal)")
    ax.set_ylabel("true positive rate (signal maps found)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_aspect("equal")
    ax.legend(loc="lower right")
