"""Specification of the EdgeConv layer (edgeconv.py).

The numeric references are brute-force NumPy implementations of the definitions in
tests/edgeconv_reference.py. The checks that must hold on every Keras backend live in
tests/edgeconv_backend_check.py and run here in a subprocess per installed backend.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(HERE), HERE]

import edgeconv_reference as reference  # noqa: E402
from edgeconv import MAX_WIDTH_BY_DIFFERENCES, EdgeConv, nearest_neighbors  # noqa: E402

ON_TENSORFLOW = keras.backend.backend() == "tensorflow"
assert 3 <= MAX_WIDTH_BY_DIFFERENCES < 6, "the neighbour tests cover both searches"


def kernel_nn(data, nodes=16):
    """The course's kernel, as the student writes it."""
    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    for _ in range(3):
        x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
        x = layers.BatchNormalization()(x)
    return x


def known_kernel(data, units=6):
    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    return layers.Dense(units, activation="relu")(x)


def operator_kernel(data):
    """A kernel written with plain operators and keras.ops instead of merge layers."""
    x_i, x_j = data
    x = keras.ops.concatenate([x_i, x_i - x_j], axis=-1)
    x = layers.Dense(8, use_bias=False)(x)
    return keras.ops.relu(layers.BatchNormalization()(x) * 2.0)


def neighbor_features(data):
    """h(x_i, x_j) = x_j, so that a sum over neighbours shows which ones were used."""
    return layers.Identity()(data[1])


def course_model(num_points=40, k=5):
    points = keras.Input((num_points, 3))
    features = keras.Input((num_points, 4))
    x = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=k)([points, features])
    x = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=k)([points, x])
    x = EdgeConv(operator_kernel, next_neighbors=k)([x, x])
    x = layers.GlobalAveragePooling1D()(x)
    output = layers.Dense(2, activation="softmax")(x)
    return keras.Model([points, features], output)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# --- neighbour search -------------------------------------------------------------------


@pytest.mark.parametrize("block_size", [None, 1, 2, 5])
@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("width", [3, 6])
def test_neighbors_are_the_k_nearest_other_points(rng, block_size, fast_path, width):
    # Widths on both sides of MAX_WIDTH_BY_DIFFERENCES: differences and products.
    points = reference.random_cloud(rng, 3, 47, width)
    indices = keras.ops.convert_to_numpy(
        nearest_neighbors(points, 6, block_size=block_size, fast_path=fast_path)
    )
    assert indices.shape == (3, 47, 6)
    np.testing.assert_allclose(
        reference.distances_of(points, indices),
        reference.nearest_distances(points, 6),
        rtol=1e-5,
        atol=1e-5,
    )


@pytest.mark.parametrize("block_size", [1, 4])
def test_point_is_never_its_own_neighbor_even_when_points_coincide(rng, block_size):
    points = reference.random_cloud(rng, 2, 30, 3)
    points[:, 10:15] = points[:, 3:4]
    indices = keras.ops.convert_to_numpy(
        nearest_neighbors(points, 4, block_size=block_size)
    )
    assert not (indices == np.arange(30)[None, :, None]).any()
    for i in [3, 10, 11, 12, 13, 14]:
        expected = {3, 10, 11, 12, 13, 14} - {i}
        assert set(indices[0, i]) <= expected and len(set(indices[0, i])) == 4


def test_layer_neighbors_are_the_graph_the_layer_aggregates(rng):
    points = reference.random_cloud(rng, 2, 33, 3)
    features = reference.random_cloud(rng, 2, 33, 4)
    layer = EdgeConv(neighbor_features, next_neighbors=5, aggregation="sum")
    output = keras.ops.convert_to_numpy(layer([points, features]))
    indices = keras.ops.convert_to_numpy(layer.neighbors(points))
    gathered = np.take_along_axis(features[:, :, None, :], indices[..., None], axis=1)
    np.testing.assert_allclose(output, gathered.sum(axis=2), rtol=1e-5, atol=1e-5)


def test_layers_on_one_points_tensor_share_the_search_and_see_new_points(rng):
    # The first two layers of the exercise read the same points tensor: the search runs
    # once for both, and a call on other points (or the same values in a new tensor)
    # must not reuse it.
    first = EdgeConv(neighbor_features, next_neighbors=5, aggregation="sum")
    second = EdgeConv(neighbor_features, next_neighbors=5, aggregation="sum")
    for _ in range(2):
        points = keras.ops.convert_to_tensor(reference.random_cloud(rng, 2, 33, 3))
        features = reference.random_cloud(rng, 2, 33, 4)
        for layer in (first, second):
            output = keras.ops.convert_to_numpy(layer([points, features]))
            distances = reference.squared_distances(keras.ops.convert_to_numpy(points))
            indices = np.argsort(distances, axis=-1)[..., :5]
            gathered = np.take_along_axis(
                features[:, :, None, :], indices[..., None], axis=1
            )
            np.testing.assert_allclose(
                output, gathered.sum(axis=2), rtol=1e-5, atol=1e-5
            )


@pytest.mark.skipif(not ON_TENSORFLOW, reason="tf.function is TensorFlow's tracing")
def test_one_eager_points_tensor_feeds_several_traced_functions(rng):
    # A traced function that closes over an eager tensor uses that very object; the
    # search a layer shares with the next one on the same points must not hand indices
    # traced in one function to another (TensorFlow refuses tensors of a finished graph).
    import tensorflow as tf

    layer = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=5)
    cloud = reference.random_cloud(rng, 2, 40, 4)
    points, features = tf.constant(cloud[..., :3]), tf.constant(cloud)
    traced = [tf.function(lambda: layer([points, features]))() for _ in range(2)]
    eager = keras.ops.convert_to_numpy(layer([points, features]))
    for output in traced:
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(output), eager, rtol=1e-5, atol=1e-6
        )


# --- layer output -----------------------------------------------------------------------


@pytest.mark.parametrize("aggregation", ["mean", "max", "sum"])
@pytest.mark.parametrize("fast_path", [True, False])
def test_output_matches_brute_force_reference(rng, aggregation, fast_path):
    points = reference.random_cloud(rng, 2, 37, 3)
    features = reference.random_cloud(rng, 2, 37, 5)
    layer = EdgeConv(
        known_kernel, next_neighbors=7, aggregation=aggregation, fast_path=fast_path
    )
    layer([points, features])
    weights = rng.normal(size=(10, 6)).astype("float32")
    bias = rng.normal(size=6).astype("float32")
    layer.kernel_func.set_weights([weights, bias])

    got = keras.ops.convert_to_numpy(layer([points, features]))

    expected = reference.edgeconv(points, features, 7, weights, bias, aggregation)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_one_input_means_points_are_features(rng):
    cloud = reference.random_cloud(rng, 2, 25, 4)
    layer = EdgeConv(known_kernel, next_neighbors=3)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer(cloud)),
        keras.ops.convert_to_numpy(layer([cloud, cloud])),
    )


def test_one_model_serves_any_number_of_points(rng):
    cloud = keras.Input((None, 3))
    model = keras.Model(cloud, EdgeConv(known_kernel, next_neighbors=4)(cloud))
    for num_points in (12, 70):
        points = reference.random_cloud(rng, 2, num_points, 3)
        layer = model.layers[1]
        weights, bias = layer.kernel_func.get_weights()
        expected = reference.edgeconv(points, points, 4, weights, bias)
        got = model.predict(points, verbose=0)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_permuting_the_points_permutes_the_output(rng):
    model = course_model()
    features = reference.random_cloud(rng, 3, 40, 4)
    permutation = rng.permutation(40)
    output = model.layers[-3].output
    per_point = keras.Model(model.inputs, output)

    original = per_point.predict([features[..., :3], features], verbose=0)
    permuted_input = features[:, permutation]
    permuted = per_point.predict([permuted_input[..., :3], permuted_input], verbose=0)

    np.testing.assert_allclose(permuted, original[:, permutation], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not ON_TENSORFLOW, reason="the XLA fast path is TensorFlow's")
def test_fast_path_agrees_with_plain_keras_ops_path(rng):
    import tensorflow as tf

    points = reference.random_cloud(rng, 4, 60, 3)
    features = reference.random_cloud(rng, 4, 60, 4)
    fast = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=8)
    plain = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=8, fast_path=False)
    fast([points, features])
    plain([points, features])
    plain.set_weights(fast.get_weights())

    results = []
    for layer in (fast, plain):
        with tf.GradientTape() as tape:
            output = layer([points, features], training=True)
            loss = tf.reduce_sum(output**2)
        gradients = tape.gradient(loss, layer.trainable_weights)
        results.append((output.numpy(), [g.numpy() for g in gradients]))

    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-4, atol=1e-4)
    for fast_gradient, plain_gradient in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(fast_gradient, plain_gradient, rtol=1e-3, atol=1e-3)


@pytest.mark.skipif(not ON_TENSORFLOW, reason="the XLA fast path is TensorFlow's")
def test_inside_a_function_compiled_with_xla_the_layer_does_not_compile_its_own(rng):
    # Keras compiles the whole training step with XLA on a GPU; a separately compiled
    # function nested in it trains some twenty times slower, so the layer calls its
    # edge function plainly there, with the same result.
    import tensorflow as tf

    points = reference.random_cloud(rng, 2, 40, 3)
    features = reference.random_cloud(rng, 2, 40, 4)
    layer = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=6)
    expected = keras.ops.convert_to_numpy(layer([points, features]))
    compiled, calls = layer._compiled_aggregate, []

    def counted(*args, **kwargs):
        calls.append(tf.executing_eagerly())
        return compiled(*args, **kwargs)

    layer._compiled_aggregate = counted
    layer([points, features])
    assert calls == [True]

    outer = tf.function(lambda p, f: layer([p, f]), jit_compile=True)
    np.testing.assert_allclose(
        outer(points, features).numpy(), expected, rtol=1e-4, atol=1e-5
    )
    assert calls == [True]


@pytest.mark.skipif(not ON_TENSORFLOW, reason="jit_compile concerns TensorFlow's XLA")
def test_training_with_the_whole_step_compiled_matches_the_default(rng):
    features = reference.random_cloud(rng, 8, 40, 4)
    labels = rng.integers(0, 2, size=8)
    losses = []
    for jit_compile in (False, True):
        keras.utils.set_random_seed(3)
        model = course_model()
        model.compile(
            optimizer=keras.optimizers.SGD(0.1),
            loss="sparse_categorical_crossentropy",
            jit_compile=jit_compile,
        )
        losses.append(
            [
                model.train_on_batch([features[..., :3], features], labels)
                for _ in range(3)
            ]
        )
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-3)


# --- the exercise's usage, training, saving ---------------------------------------------


def test_course_usage_exposes_kernel_model_and_k():
    model = course_model()
    layer = model.layers[2]
    assert isinstance(layer, EdgeConv)
    assert isinstance(layer.kernel_func, keras.Model)
    assert layer.next_neighbors == 5
    assert layer.kernel_func.output.shape == (None, 8)
    assert model.output.shape == (None, 2)


def test_training_step_reaches_every_kernel_weight(rng):
    model = course_model()
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy"
    )
    weights = [
        w for layer in model.layers[2:5] for w in layer.kernel_func.trainable_weights
    ]
    before = [keras.ops.convert_to_numpy(w).copy() for w in weights]
    features = reference.random_cloud(rng, 8, 40, 4)

    model.fit([features[..., :3], features], rng.integers(0, 2, 8), verbose=0)

    unchanged = [
        w.path
        for w, old in zip(weights, before)
        if np.array_equal(keras.ops.convert_to_numpy(w), old)
    ]
    assert not unchanged, f"no gradient reached {unchanged}"


def test_save_and_load_round_trip_without_custom_objects(rng, tmp_path):
    model = course_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    features = reference.random_cloud(rng, 8, 40, 4)
    inputs = [features[..., :3], features]
    model.fit(inputs, rng.integers(0, 2, 8), verbose=0)
    path = tmp_path / "edgeconv.keras"

    model.save(path)
    loaded = keras.models.load_model(path)

    np.testing.assert_array_equal(
        loaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0)
    )
    assert loaded.layers[2].next_neighbors == 5
    assert isinstance(loaded.layers[4].kernel_func, keras.Model)


def test_loading_needs_only_import_edgeconv(rng, tmp_path):
    course_model().save(tmp_path / "edgeconv.keras")
    script = (
        "import keras, edgeconv; "
        f"m = keras.models.load_model({str(tmp_path / 'edgeconv.keras')!r}); "
        "print(type(m.layers[2]).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=os.path.dirname(HERE),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("EdgeConv")


def test_saving_a_lambda_layer_kernel_says_what_to_use_instead(tmp_path):
    def lambda_kernel(data):
        x = layers.Lambda(lambda pair: pair[0] - pair[1])(data)
        return layers.Dense(4)(x)

    points = keras.Input((20, 3))
    model = keras.Model(points, EdgeConv(lambda_kernel, next_neighbors=3)(points))
    with pytest.raises(ValueError, match="Lambda.*keras.ops"):
        model.save(tmp_path / "lambda.keras")


# --- bad input --------------------------------------------------------------------------


def test_too_many_neighbors_is_refused():
    with pytest.raises(ValueError, match=r"next_neighbors=10.*only 10 points"):
        EdgeConv(known_kernel, next_neighbors=10)(keras.Input((10, 3)))


def test_points_and_features_with_different_numbers_of_points_are_refused():
    with pytest.raises(
        ValueError, match=r"\(None, 50, 3\).*\(None, 40, 4\).*number of"
    ):
        EdgeConv(known_kernel, next_neighbors=3)(
            [keras.Input((50, 3)), keras.Input((40, 4))]
        )


def test_points_and_features_with_different_batch_sizes_are_refused(rng):
    layer = EdgeConv(known_kernel, next_neighbors=3)
    points = reference.random_cloud(rng, 2, 20, 3)
    features = reference.random_cloud(rng, 3, 20, 4)
    with pytest.raises(ValueError, match=r"\(2, 20, 3\).*\(3, 20, 4\).*batch size"):
        layer([points, features])


def test_input_of_rank_two_is_refused():
    with pytest.raises(ValueError, match=r"rank 2\); expected rank 3"):
        EdgeConv(known_kernel, next_neighbors=3)(keras.Input((3,)))


def test_kernel_output_of_rank_three_is_refused():
    def bad_kernel(data):
        return layers.Reshape((2, 3))(layers.Dense(6)(data[0]))

    with pytest.raises(ValueError, match=r"returned shape \(None, 2, 3\).*rank 2"):
        EdgeConv(bad_kernel, next_neighbors=3)(keras.Input((20, 3)))


def test_kernel_returning_no_keras_tensor_is_refused():
    with pytest.raises(TypeError, match="expected one Keras tensor"):
        EdgeConv(lambda data: [data[0], data[1]], next_neighbors=3)(
            keras.Input((20, 3))
        )


def test_unknown_aggregation_is_refused():
    with pytest.raises(
        ValueError, match=r"aggregation='median'.*\['max', 'mean', 'sum'\]"
    ):
        EdgeConv(known_kernel, aggregation="median")


# --- other backends ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_backend_check_passes(backend):
    if backend == keras.backend.backend():
        pytest.skip(f"{backend} is this process's backend; the tests above cover it")
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed")
    environment = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(
        [sys.executable, os.path.join(HERE, "edgeconv_backend_check.py")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.strip().endswith(f"ok {backend}")
