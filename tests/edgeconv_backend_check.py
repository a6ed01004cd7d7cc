"""The EdgeConv checks that must hold on every Keras backend, run as a script.

Run with the backend chosen by the environment, e.g.::

    KERAS_BACKEND=jax python tests/edgeconv_backend_check.py

tests/test_edgeconv.py runs it in a subprocess for every backend that is installed, since
Keras fixes its backend once per process. Exits with an AssertionError on the first
failed check; prints "ok <backend>" when all hold.
"""

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

import edgeconv_reference as reference  # noqa: E402
from edgeconv import EdgeConv  # noqa: E402


def known_kernel(data, units=6):
    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    return layers.Dense(units, activation="relu")(x)


def batch_norm_kernel(data, nodes=8):
    x_i, x_j = data
    x = keras.ops.concatenate([x_i, x_i - x_j], axis=-1)
    for _ in range(2):
        x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
        x = layers.BatchNormalization()(x)
    return x


def check_neighbors(rng, fast_path):
    points = reference.random_cloud(rng, 3, 41, 3)
    layer = EdgeConv(known_kernel, next_neighbors=6, fast_path=fast_path)
    layer([points, points])
    indices = keras.ops.convert_to_numpy(layer.neighbors(points))
    assert indices.shape == (3, 41, 6), indices.shape
    np.testing.assert_allclose(
        reference.distances_of(points, indices),
        reference.nearest_distances(points, 6),
        rtol=1e-5,
        atol=1e-5,
    )


def check_output(rng, fast_path):
    points = reference.random_cloud(rng, 2, 29, 3)
    features = reference.random_cloud(rng, 2, 29, 5)
    for aggregation in ("mean", "max", "sum"):
        layer = EdgeConv(
            known_kernel, next_neighbors=4, aggregation=aggregation, fast_path=fast_path
        )
        layer([points, features])
        weights = rng.normal(size=(10, 6)).astype("float32")
        bias = rng.normal(size=6).astype("float32")
        layer.kernel_func.set_weights([weights, bias])
        got = keras.ops.convert_to_numpy(layer([points, features]))
        expected = reference.edgeconv(points, features, 4, weights, bias, aggregation)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def reference_style_model(num_points):
    points = keras.Input((num_points, 3))
    features = keras.Input((num_points, 4))
    x = EdgeConv(lambda a: batch_norm_kernel(a, nodes=8), next_neighbors=5)(
        [points, features]
    )
    x = EdgeConv(lambda a: batch_norm_kernel(a, nodes=8), next_neighbors=4)([x, x])
    x = layers.GlobalAveragePooling1D()(x)
    output = layers.Dense(2, activation="softmax")(x)
    return keras.Model([points, features], output)


def check_training_and_round_trip(rng):
    features = reference.random_cloud(rng, 8, 30, 4)
    inputs = [features[..., :3], features]
    labels = rng.integers(0, 2, size=8)
    model = reference_style_model(30)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy"
    )
    kernel_weights = [
        w for layer in model.layers[2:4] for w in layer.kernel_func.trainable_weights
    ]
    before = [keras.ops.convert_to_numpy(w).copy() for w in kernel_weights]
    model.fit(inputs, labels, batch_size=8, epochs=1, verbose=0)
    for weight, old in zip(kernel_weights, before):
        changed = np.abs(keras.ops.convert_to_numpy(weight) - old).max()
        assert changed > 0, f"kernel weight {weight.path} got no gradient"

    predictions = model.predict(inputs, verbose=0)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(inputs, verbose=0), predictions)


def main():
    rng = np.random.default_rng(20)
    fast_paths = (True, False) if keras.backend.backend() == "tensorflow" else (True,)
    for fast_path in fast_paths:
        check_neighbors(rng, fast_path)
        check_output(rng, fast_path)
    check_training_and_round_trip(rng)
    print("ok", keras.backend.backend())


if __name__ == "__main__":
    main()
