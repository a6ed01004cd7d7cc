"""Brute-force NumPy references for the EdgeConv tests, written for clarity, not speed.

Imported by tests/test_edgeconv.py and by tests/edgeconv_backend_check.py, which runs the
same checks under another Keras backend in a subprocess.
"""

import numpy as np


def squared_distances(points):
    """All squared distances within each sample in float64, the diagonal at infinity."""
    points = np.asarray(points, dtype=np.float64)
    distances = ((points[:, :, None, :] - points[:, None, :, :]) ** 2).sum(axis=-1)
    distances[:, np.arange(points.shape[1]), np.arange(points.shape[1])] = np.inf
    return distances


def nearest_distances(points, k):
    """Squared distances of the k nearest other points of every point, ascending."""
    return np.sort(squared_distances(points), axis=-1)[..., :k]


def distances_of(points, indices):
    """Squared distances from every point to the points that ``indices`` name."""
    return np.take_along_axis(squared_distances(points), np.asarray(indices), axis=-1)


def edge_kernel(x_i, x_j, weights, bias):
    """The known test kernel h(x_i, x_j) = relu([x_i, x_i - x_j] W + b)."""
    return np.maximum(np.concatenate([x_i, x_i - x_j], axis=-1) @ weights + bias, 0.0)


def edgeconv(points, features, k, weights, bias, aggregation="mean"):
    """EdgeConv by its definition: loop over points, neighbours by exhaustive sort."""
    points = np.asarray(points, dtype=np.float64)
    features = np.asarray(features, dtype=np.float64)
    order = np.argsort(squared_distances(points), axis=-1, kind="stable")[..., :k]
    reduce = {"mean": np.mean, "max": np.max, "sum": np.sum}[aggregation]
    batch_size, num_points, _ = features.shape
    output = np.empty((batch_size, num_points, bias.shape[0]))
    for b in range(batch_size):
        for i in range(num_points):
            x_i = np.repeat(features[b, i][None], k, axis=0)
            x_j = features[b, order[b, i]]
            output[b, i] = reduce(edge_kernel(x_i, x_j, weights, bias), axis=0)
    return output


def random_cloud(rng, batch_size, num_points, width):
    """Random points with well separated distances (ties are tested on their own)."""
    return rng.normal(size=(batch_size, num_points, width)).astype("float32")
