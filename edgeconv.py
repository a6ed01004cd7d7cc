"""EdgeConv, the graph convolution of dynamic graph CNNs, as a Keras 3 layer.

For every point i with features x_i, EdgeConv (Wang et al. 2019, "Dynamic Graph CNN for
Learning on Point Clouds", ACM Trans. Graph. 38, 146; arXiv:1801.07829) computes

    x'_i = aggregate_{j in kNN(i)} h([x_i, x_j])

where kNN(i) are the k nearest neighbours of point i (the point itself excluded) and h is
a small neural network, the kernel, shared by all edges. Neighbours are found by the
Euclidean distance of one tensor (the points) and the kernel reads the features of a
second one; passing the same tensor twice makes the graph dynamic, rebuilt from learned
features in every layer.

This file depends on ``keras`` and ``numpy`` only, so it can be downloaded on its own::

    from edgeconv import EdgeConv
    y = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=5)([points, features])
"""

import keras
import numpy as np
from keras import ops

__all__ = ["EdgeConv", "AGGREGATIONS", "nearest_neighbors", "search_block_size"]

AGGREGATIONS = {"mean": ops.mean, "max": ops.max, "sum": ops.sum}


# Selection by repeated maxima costs k passes over the rows; above this k, top_k wins.
MAX_K_BY_EXTRACTION = 16

# Up to this many coordinates, the search in blocks computes differences, not products.
MAX_WIDTH_BY_DIFFERENCES = 4

# Functions compiled by _xla, so that each is traced once per input shape.
_XLA_CACHE = {}

# The last search of an EdgeConv call on TensorFlow: (points, settings, graph, indices).
# Layers that share their points tensor (the first two of the exercise's network) search
# only once.
_LAST_SEARCH = [None, None, None, None]


def _inside_xla():
    """Whether TensorFlow is tracing a function that XLA compiles as a whole.

    Keras compiles the whole training step with XLA where it finds a GPU
    (``jit_compile="auto"``) or when asked (``jit_compile=True``). A function compiled
    on its own and called inside that step is not merged into it: its gradient then
    runs some twenty times slower (measured on a CPU). Inside such a step the layer
    calls its functions plainly and lets the outer compilation fuse them. TensorFlow has
    no public test for this; its internal one is used, and its absence means "no".
    """
    try:
        import tensorflow as tf
        from tensorflow.python.ops import control_flow_util
    except ImportError:
        return False
    try:
        graph = tf.compat.v1.get_default_graph()
        return bool(control_flow_util.GraphOrParentsInXlaContext(graph))
    except AttributeError:
        return False


def _xla(function):
    """``function`` compiled with XLA on the TensorFlow backend, else unchanged.

    XLA fuses the element-wise operations of the neighbour search, and those around the
    kernel's matrix products, into a few loops, on a CPU as on a GPU. Inside a function
    that XLA compiles already, ``function`` is returned as it is (see ``_inside_xla``).
    """
    if keras.backend.backend() != "tensorflow" or _inside_xla():
        return function
    if function not in _XLA_CACHE:
        import tensorflow as tf

        _XLA_CACHE[function] = tf.function(function, jit_compile=True)
    return _XLA_CACHE[function]


def _exclude(closeness, rows, columns, num_points):
    """Closeness with the self-pair and columns past the last point (padding) at -inf.

    So a point is never its own neighbour, even when another point coincides with it.
    """
    excluded = (rows == columns) | (columns >= num_points)
    return ops.where(excluded, ops.cast(-np.inf, closeness.dtype), closeness)


def _top_k_indices(values, k, by_extraction):
    """Column indices of the k largest values of every row, largest first.

    ``by_extraction`` takes the maximum k times, each time removing it (the lowest index
    among equal values): k passes of element-wise operations and reductions. Under
    TensorFlow's XLA on a CPU this is two to three times faster than TensorFlow's top_k
    on rows of 64 values, whose cost is mostly per row, and it keeps the whole search
    in one compiled function.

    Parameters
    ----------
    values : tensor, shape (R, N)
    k : int
    by_extraction : bool
        Select by repeated maxima instead of ``keras.ops.top_k``.

    Returns
    -------
    int32 tensor, shape (R, k)
    """
    if not by_extraction:
        return ops.cast(ops.top_k(values, k)[1], "int32")
    num_columns = ops.shape(values)[-1]
    column = ops.arange(num_columns, dtype="int32")
    removed = ops.cast(-np.inf, values.dtype)
    chosen = []
    for _ in range(k):
        largest = ops.max(values, axis=-1, keepdims=True)
        first = ops.min(
            ops.where(values == largest, column, num_columns - 1),
            axis=-1,
            keepdims=True,
        )
        chosen.append(first)
        values = ops.where(column == first, removed, values)
    return ops.concatenate(chosen, axis=-1)


def search_block_size(num_points, k):
    """Block size of the two-stage neighbour search, 1 for a direct search.

    Blocks of b points leave two short selections, over P / b block maxima and over
    k * b candidates, instead of one over P points; b near sqrt(P / k) balances the two.
    """
    if num_points is None or num_points < 4 * k:
        return 1
    return int(2 ** np.round(np.log2(np.sqrt(num_points / k))))


def _search(points, k, block_size, by_extraction):
    """The neighbour search of ``nearest_neighbors``, for fixed settings."""
    if block_size > 1:
        return _search_in_blocks(points, k, block_size, by_extraction)
    batch_size, num_points = ops.shape(points)[0], ops.shape(points)[1]
    squared_norms = ops.sum(ops.square(points), axis=-1)
    products = ops.matmul(points, ops.transpose(points, (0, 2, 1)))
    closeness = 2.0 * products - ops.expand_dims(squared_norms, 1)
    position = ops.arange(num_points, dtype="int32")
    closeness = _exclude(
        closeness,
        ops.expand_dims(position, 1),
        ops.expand_dims(position, 0),
        num_points,
    )
    rows = ops.reshape(closeness, (-1, num_points))
    indices = _top_k_indices(rows, k, by_extraction)
    return ops.reshape(indices, (batch_size, num_points, k))


def _top_k_along_candidates(values, k, by_extraction):
    """``_top_k_indices`` for values of shape (B, N, P): the k largest of every (b, :, i).

    With the candidates on the middle axis and the points innermost, every pass of the
    selection by repeated maxima is an element-wise operation on whole rows of points,
    which vectorises on a CPU.

    Returns
    -------
    int32 tensor, shape (B, k, P)
    """
    if not by_extraction:
        indices = ops.top_k(ops.transpose(values, (0, 2, 1)), k)[1]
        return ops.transpose(ops.cast(indices, "int32"), (0, 2, 1))
    num_candidates = values.shape[1]
    candidate = ops.reshape(ops.arange(num_candidates, dtype="int32"), (1, -1, 1))
    removed = ops.cast(-np.inf, values.dtype)
    chosen = []
    for _ in range(k):
        largest = ops.max(values, axis=1, keepdims=True)
        first = ops.min(
            ops.where(values == largest, candidate, num_candidates - 1),
            axis=1,
            keepdims=True,
        )
        chosen.append(first)
        values = ops.where(candidate == first, removed, values)
    return ops.concatenate(chosen, axis=1)


def _search_in_blocks(points, k, block_size, by_extraction):
    """The search in two stages: the k best blocks of points, then the best k of their members.

    The points are padded to ``num_blocks * block_size`` and point c belongs to block
    ``c % num_blocks``, so that the reduction to block maxima is an element-wise maximum
    of ``block_size`` slices. All intermediate tensors put the candidates on the middle
    axis and the points that search innermost, (B, candidates, P).

    Closeness is minus the squared distance, less the searching point's own squared norm
    (which does not change its ranking): from explicit differences for points of at most
    ``MAX_WIDTH_BY_DIFFERENCES`` coordinates, else from a matrix product.
    """
    batch_size, num_points, width = (
        ops.shape(points)[0],
        points.shape[1],
        points.shape[2],
    )
    num_blocks = -(-num_points // block_size)
    num_blocks += -num_blocks % 8
    padded_size = num_blocks * block_size
    padded = ops.pad(points, ((0, 0), (0, padded_size - num_points), (0, 0)))
    own = ops.transpose(points, (0, 2, 1))  # (B, D, P)
    searching = ops.reshape(ops.arange(num_points, dtype="int32"), (1, 1, -1))
    by_differences = width <= MAX_WIDTH_BY_DIFFERENCES

    if by_differences:
        closeness = 0.0
        for axis in range(width):
            difference = padded[:, :, axis : axis + 1] - own[:, axis : axis + 1, :]
            closeness = closeness - ops.square(difference)
    else:
        squared_norms = ops.sum(ops.square(padded), axis=-1)  # (B, padded)
        products = ops.matmul(padded, own)  # (B, padded, P)
        closeness = 2.0 * products - ops.expand_dims(squared_norms, 2)
    candidate = ops.reshape(ops.arange(padded_size, dtype="int32"), (1, -1, 1))
    closeness = _exclude(closeness, searching, candidate, num_points)
    # Written as a negated minimum so that XLA cannot merge the maxima with the first
    # maximum of the selection into one reduction over all pairs, which would store them.
    blocks = ops.reshape(closeness, (-1, block_size, num_blocks, num_points))
    maxima = -ops.min(-blocks, axis=1)  # (B, blocks, P)
    best_blocks = _top_k_along_candidates(maxima, k, by_extraction)  # (B, k, P)

    # The members of the chosen blocks: (B, k * block_size, P) point indices.
    offsets = ops.reshape(
        ops.arange(block_size, dtype="int32") * num_blocks, (1, 1, -1, 1)
    )
    members = ops.expand_dims(best_blocks, 2) + offsets
    members = ops.reshape(members, (-1, k * block_size, num_points))
    flat_members = (
        ops.reshape(ops.arange(batch_size, dtype="int32") * padded_size, (-1, 1, 1))
        + members
    )
    if by_differences:
        flat_padded = ops.reshape(padded, (-1, width))
        candidates = 0.0
        for axis in range(width):
            coordinate = ops.take(flat_padded[:, axis], flat_members)
            candidates = candidates - ops.square(
                coordinate - own[:, axis : axis + 1, :]
            )
    else:
        flat_products = ops.reshape(products, (-1,))
        candidate_products = ops.take(
            flat_products, flat_members * num_points + searching
        )
        candidate_norms = ops.take(ops.reshape(squared_norms, (-1,)), flat_members)
        candidates = 2.0 * candidate_products - candidate_norms
    candidates = _exclude(candidates, searching, members, num_points)
    best = _top_k_along_candidates(candidates, k, by_extraction)  # (B, k, P)

    indices = ops.take(ops.reshape(members, (-1,)), _flat_positions(members, best))
    return ops.transpose(ops.reshape(indices, (batch_size, k, num_points)), (0, 2, 1))


def _flat_positions(members, best):
    """Flat indices into ``members`` (B, M, P) of ``members[b, best[b, n, i], i]``."""
    num_members, num_points = members.shape[1], members.shape[2]
    batch = ops.reshape(ops.arange(ops.shape(members)[0], dtype="int32"), (-1, 1, 1))
    searching = ops.reshape(ops.arange(num_points, dtype="int32"), (1, 1, -1))
    return (batch * num_members + best) * num_points + searching


def nearest_neighbors(points, k, fast_path=True, block_size=None):
    """Indices of the k nearest points of every point, the point itself excluded.

    The search is exact. The plain path, on every backend, ranks all points with
    ``keras.ops.top_k``. The fast path, on TensorFlow, runs in two stages compiled with
    XLA: the points are split into blocks of b points, the k blocks with the nearest
    members are chosen, and the k nearest points are searched among their k * b
    members. Any of the k nearest points lies in a chosen block: were its block not
    chosen, k chosen blocks would each hold a point at least as near, and it would not be
    among the k nearest. (On JAX, whose XLA runs the two stages slower than one top_k,
    and on PyTorch, the plain path is the faster one.)

    Parameters
    ----------
    points : tensor, shape (B, P, D)
        Coordinates that define the graph.
    k : int
        Number of neighbours, 1 <= k < P.
    fast_path : bool, default True
        Take the fast path where the backend is TensorFlow.
    block_size : int, optional
        Points per block; 1 searches all points at once. Default: ``search_block_size``
        on the fast path, 1 on the plain path.

    Returns
    -------
    int32 tensor, shape (B, P, k)
        ``indices[b, i]`` are the neighbours of point i in sample b, nearest first.
    """
    fast = fast_path and keras.backend.backend() == "tensorflow"
    if block_size is None:
        block_size = search_block_size(points.shape[1], k) if fast else 1
    by_extraction = fast and k <= MAX_K_BY_EXTRACTION
    search = _xla(_search) if fast else _search
    return search(ops.stop_gradient(points), k, block_size, by_extraction)


def _gather_neighbors(features, indices):
    """Features of every neighbour, one row per edge.

    Parameters
    ----------
    features : tensor, shape (B, P, C)
    indices : int32 tensor, shape (B, P, k)

    Returns
    -------
    tensor, shape (B * P * k, C)
        Row (b * P + i) * k + n holds the features of neighbour n of point i in sample b.
    """
    batch_size, num_points, width = ops.shape(features)
    flat_features = ops.reshape(features, (-1, width))
    offsets = ops.reshape(
        ops.arange(batch_size, dtype="int32") * num_points, (-1, 1, 1)
    )
    flat_indices = ops.reshape(indices + offsets, (-1,))
    return ops.take(flat_features, flat_indices, axis=0)


def _nested_layers(model):
    """All layers inside ``model``, those of nested models included."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _nested_layers(layer)


@keras.saving.register_keras_serializable(package="edgeconv")
class EdgeConv(keras.layers.Layer):
    r"""Edge convolution on the k-nearest-neighbour graph of a point cloud.

    .. math::

        x'_i = \mathop{\mathrm{aggregate}}_{j \in \mathrm{kNN}(i)} h_\Theta(x_i, x_j)

    (Wang et al. 2019, arXiv:1801.07829). The graph connects every point to its k nearest
    neighbours by Euclidean distance of the first input, itself excluded; the kernel
    h_Theta reads the features of the second input.

    Parameters
    ----------
    kernel_func : callable or keras.Model
        ``kernel_func([x_i, x_j])`` receives two Keras tensors of shape (None, C), the
        features of a central point and of one neighbour, and returns one Keras tensor
        of shape (None, C'). It may use any Keras layers and ``keras.ops``. The layer
        turns it into a ``keras.Model`` when it is built and exposes that model as
        ``kernel_func``. For saving, write it without ``Lambda`` layers.
    next_neighbors : int, default 8
        k, the number of neighbours of every point.
    aggregation : {"mean", "max", "sum"}, default "mean"
        How the k edge outputs of a point are combined.
    fast_path : bool, default True
        On TensorFlow, search the neighbours in blocks and compile the search and the
        kernel with XLA (same results up to float rounding; about twice as fast on a
        CPU). False, and every other backend, runs plain ``keras.ops``.
    **kwargs
        Passed to ``keras.layers.Layer`` (``name``, ``dtype``, ...).

    Inputs
    ------
    ``[points, features]`` with shapes (B, P, D) and (B, P, C), or one tensor (B, P, C)
    that serves as both.

    Outputs
    -------
    tensor of shape (B, P, C').
    """

    def __init__(
        self,
        kernel_func,
        next_neighbors=8,
        aggregation="mean",
        fast_path=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(next_neighbors, bool) or not isinstance(
            next_neighbors, (int, np.integer)
        ):
            raise TypeError(
                f"EdgeConv got next_neighbors={next_neighbors!r}; expected a positive "
                "integer, the number of neighbours of every point."
            )
        if next_neighbors < 1:
            raise ValueError(
                f"EdgeConv got next_neighbors={next_neighbors}; expected at least 1."
            )
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f"EdgeConv got aggregation={aggregation!r}; expected one of "
                f"{sorted(AGGREGATIONS)}."
            )
        if not callable(kernel_func):
            raise TypeError(
                f"EdgeConv got kernel_func={kernel_func!r}; expected a function that "
                "maps [x_i, x_j] (Keras tensors) to a Keras tensor, or a keras.Model."
            )
        self.next_neighbors = int(next_neighbors)
        self.aggregation = aggregation
        self.fast_path = bool(fast_path)
        self._compiled_aggregate = None
        if isinstance(kernel_func, keras.Model):
            self.kernel_func = kernel_func
        else:
            self._kernel_builder = kernel_func
            self.kernel_func = None

    def _split_shapes(self, input_shape):
        if (
            isinstance(input_shape, (list, tuple))
            and input_shape
            and isinstance(input_shape[0], (list, tuple))
        ):
            if len(input_shape) != 2:
                raise ValueError(
                    f"EdgeConv {self.name} got {len(input_shape)} inputs; expected "
                    "[points, features] or one tensor that serves as both."
                )
            return tuple(input_shape[0]), tuple(input_shape[1])
        return tuple(input_shape), tuple(input_shape)

    def _check_shapes(self, points_shape, features_shape):
        for role, shape in (("points", points_shape), ("features", features_shape)):
            if len(shape) != 3:
                raise ValueError(
                    f"EdgeConv {self.name} got {role} of shape {shape} (rank "
                    f"{len(shape)}); expected rank 3, (batch, points, channels). Add "
                    "the batch axis, e.g. x[None] for a single sample."
                )
        for axis, what in ((0, "batch size"), (1, "number of points")):
            a, b = points_shape[axis], features_shape[axis]
            if a is not None and b is not None and a != b:
                raise ValueError(
                    f"EdgeConv {self.name} got points of shape {points_shape} and "
                    f"features of shape {features_shape}; expected the same {what} in "
                    "both, one row of features per point."
                )
        num_points = (
            points_shape[1] if points_shape[1] is not None else features_shape[1]
        )
        if num_points is not None and self.next_neighbors >= num_points:
            raise ValueError(
                f"EdgeConv {self.name} has next_neighbors={self.next_neighbors} but the "
                f"input has only {num_points} points; expected next_neighbors < number "
                "of points (a point is not its own neighbour). Lower next_neighbors."
            )

    def _build_kernel(self, width):
        x_i = keras.Input((width,), name="x_i")
        x_j = keras.Input((width,), name="x_j")
        output = self._kernel_builder([x_i, x_j])
        if not keras.utils.is_keras_tensor(output):
            raise TypeError(
                f"The kernel_func of EdgeConv {self.name} returned {type(output)}; "
                "expected one Keras tensor of shape (None, channels) built from the "
                "[x_i, x_j] it received."
            )
        if len(output.shape) != 2:
            raise ValueError(
                f"The kernel_func of EdgeConv {self.name} returned shape {output.shape}; "
                "expected rank 2, (None, channels): one output vector per edge."
            )
        return keras.Model([x_i, x_j], output, name=f"{self.name}_kernel")

    def build(self, input_shape):
        points_shape, features_shape = self._split_shapes(input_shape)
        self._check_shapes(points_shape, features_shape)
        width = features_shape[-1]
        if self.kernel_func is None:
            self.kernel_func = self._build_kernel(width)
        else:
            expected = [(None, width), (None, width)]
            got = [tuple(t.shape) for t in self.kernel_func.inputs]
            if got != expected:
                raise ValueError(
                    f"The kernel model of EdgeConv {self.name} takes inputs of shapes "
                    f"{got}; the features have {width} channels, so expected {expected}."
                )
        if (
            len(self.kernel_func.outputs) != 1
            or len(self.kernel_func.outputs[0].shape) != 2
        ):
            raise ValueError(
                f"The kernel model of EdgeConv {self.name} has outputs "
                f"{[tuple(t.shape) for t in self.kernel_func.outputs]}; expected one "
                "output of rank 2, (None, channels)."
            )

    def compute_output_shape(self, input_shape):
        points_shape, features_shape = self._split_shapes(input_shape)
        channels = self.kernel_func.outputs[0].shape[-1]
        return (points_shape[0], points_shape[1], channels)

    def _split_inputs(self, inputs):
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != 2:
                raise ValueError(
                    f"EdgeConv {self.name} got {len(inputs)} inputs; expected "
                    "[points, features] or one tensor that serves as both."
                )
            return inputs[0], inputs[1]
        return inputs, inputs

    def neighbors(self, points):
        """Indices of the neighbours this layer connects, for the given points.

        Parameters
        ----------
        points : array or tensor, shape (B, P, D)
            The first input of the layer (for a dynamic layer, its input features).

        Returns
        -------
        int32 tensor, shape (B, P, k)
            Computed by the same function as the layer's own call, nearest first.
        """
        points = ops.convert_to_tensor(points)
        shape = tuple(points.shape)
        self._check_shapes(shape, shape)
        return nearest_neighbors(points, self.next_neighbors, self.fast_path)

    def _shared_search(self, points):
        """``nearest_neighbors`` of the points, reused when the last call had the same.

        The same tensor object holds the same values (tensors are immutable), so two
        layers called on one points tensor in one model build the same graph. The reuse
        is limited to TensorFlow, and to the graph (or eager context) the indices were
        made in: one eager tensor can feed several traced functions, and indices traced
        in one of them cannot be used in another. Variables are searched every time,
        since their values change.
        """
        if (
            keras.backend.backend() != "tensorflow"
            or isinstance(points, keras.Variable)
            or hasattr(points, "assign")
        ):
            return nearest_neighbors(points, self.next_neighbors, self.fast_path)
        import tensorflow as tf

        settings = (self.next_neighbors, self.fast_path)
        graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
        last_points, last_settings, last_graph, last_indices = _LAST_SEARCH
        if points is last_points and settings == last_settings and graph is last_graph:
            return last_indices
        indices = nearest_neighbors(points, self.next_neighbors, self.fast_path)
        _LAST_SEARCH[:] = [points, settings, graph, indices]
        return indices

    def _aggregate_edges(self, features, indices, training=None):
        """Apply the kernel to every edge and aggregate over the neighbours of a point."""
        batch_size, num_points, width = ops.shape(features)
        k = self.next_neighbors
        x_i = ops.repeat(ops.reshape(features, (-1, width)), k, axis=0)
        x_j = _gather_neighbors(features, indices)

        edges = self.kernel_func([x_i, x_j], training=training)

        edges = ops.reshape(edges, (batch_size, num_points, k, edges.shape[-1]))
        return AGGREGATIONS[self.aggregation](edges, axis=2)

    def call(self, inputs, training=None):
        points, features = self._split_inputs(inputs)
        self._check_shapes(tuple(points.shape), tuple(features.shape))
        indices = self._shared_search(points)
        if self.fast_path and keras.backend.backend() == "tensorflow":
            if self._compiled_aggregate is None:
                import tensorflow as tf

                self._compiled_aggregate = tf.function(
                    self._aggregate_edges, jit_compile=True
                )
            if not _inside_xla():
                return self._compiled_aggregate(features, indices, training=training)
        return self._aggregate_edges(features, indices, training=training)

    def get_config(self):
        if self.kernel_func is None:
            raise ValueError(
                f"EdgeConv {self.name} cannot be saved before it is built: its kernel is "
                "still a Python function. Call the layer on inputs first."
            )
        for layer in _nested_layers(self.kernel_func):
            if isinstance(layer, keras.layers.Lambda):
                raise ValueError(
                    f"The kernel of EdgeConv {self.name} contains the Lambda layer "
                    f"{layer.name!r}, which Keras refuses to load back (it would run "
                    "stored Python bytecode). Write the kernel with built-in layers "
                    "(layers.Subtract, layers.Concatenate) or with keras.ops on the "
                    "tensors (x_i - x_j, keras.ops.concatenate) instead."
                )
        config = super().get_config()
        config.update(
            {
                "kernel_func": keras.saving.serialize_keras_object(self.kernel_func),
                "next_neighbors": self.next_neighbors,
                "aggregation": self.aggregation,
                "fast_path": self.fast_path,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["kernel_func"] = keras.saving.deserialize_keras_object(
            config["kernel_func"]
        )
        return cls(**config)
