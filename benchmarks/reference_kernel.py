"""The exercise's edge network, shared by the benchmarks.

[x_i, x_i - x_j], then 3 x (Dense without bias, ReLU, BatchNormalization): the solution
of Exercise 1 in solutions/dgcnn_cosmic_rays.py, which stays the student's own copy.
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
