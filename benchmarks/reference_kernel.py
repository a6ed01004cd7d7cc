"""The exercise's edge network and the reference model, shared by the benchmarks.

The edge network: [x_i, x_i - x_j], then 3 x (Dense without bias, ReLU,
BatchNormalization), the solution of Exercise 1 in solutions/dgcnn_cosmic_rays.py, which
stays the student's own copy. The reference model of issue 2: three EdgeConv layers with
k = 8 and kernel widths 8, 16 and 32, the last on a dynamic graph, then global average
pooling and a two-class softmax.
"""


def kernel_nn(data, nodes=16, layers=None):
    """Edge features of the pairs ``data = [x_i, x_j]``, each of shape (None, C).

    ``layers`` is the Keras layers module to build with: Keras 3's by default, imported
    after the caller has chosen KERAS_BACKEND (the book's layer needs Keras 2's).
    """
    if layers is None:
        from keras import layers

    x_i, x_j = data
    x = layers.Concatenate(axis=-1)([x_i, layers.Subtract()([x_i, x_j])])
    for _ in range(3):
        x = layers.Dense(nodes, use_bias=False, activation="relu")(x)
        x = layers.BatchNormalization()(x)
    return x


def reference_network(keras, edge_conv, num_points, **layer_options):
    """The reference model, uncompiled, built from ``keras`` (Keras 3 or the book's Keras 2)
    with the EdgeConv class ``edge_conv``, called with ``layer_options``."""
    layers = keras.layers

    def layer(nodes):
        kernel = lambda a: kernel_nn(a, nodes=nodes, layers=layers)  # noqa: E731
        return edge_conv(kernel, next_neighbors=8, **layer_options)

    points = keras.Input((num_points, 3), name="points")
    features = keras.Input((num_points, 4), name="features")
    x = layer(8)([points, features])
    x = layer(16)([points, x])
    x = layer(32)([x, x])
    x = layers.GlobalAveragePooling1D()(x)
    output = layers.Dense(2, activation="softmax")(x)
    return keras.Model([points, features], output)
