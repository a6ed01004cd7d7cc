"""Training speed and peak memory of the reference EdgeConv model.

The reference model (issue 2): three EdgeConv layers with k = 8 and kernel widths 8, 16
and 32, the last one on a dynamic graph; each kernel sends [x_i, x_i - x_j] through three
times (Dense without bias, ReLU, BatchNormalization); then global average pooling and a
two-class softmax. It is trained on random sky maps of 500 points.

Usage::

    python benchmarks/edgeconv_speed.py --backend tensorflow --batch-size 64 --steps 30

prints milliseconds per training step (best and median over the timed steps), samples per
second, the CPU time per step, the peak memory of the process (and of the GPU, where one
is used), and the load average, since other work on the machine slows the steps down.
``--plain`` runs the plain keras.ops path where a faster backend path exists;
``--jit-compile`` compiles the whole training step with XLA, as Keras does by default on
a GPU (``jit_compile="auto"``).
"""

import argparse
import os
import resource
import statistics
import sys
import time

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backend", choices=["tensorflow", "jax", "torch"], default="tensorflow"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed steps first (tracing, compiling)"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="use the plain keras.ops path even where a faster backend path exists",
    )
    parser.add_argument(
        "--jit-compile",
        action="store_true",
        help="compile the whole training step with XLA (Keras's default on a GPU)",
    )
    return parser.parse_args()


def reference_model(num_points, plain, jit_compile="auto"):
    import keras

    from edgeconv import EdgeConv
    from reference_kernel import reference_network

    model = reference_network(keras, EdgeConv, num_points, fast_path=not plain)
    model.compile(
        optimizer="adam",
        loss="sparse_categorical_crossentropy",
        jit_compile=jit_compile,
    )
    return model


def gpu_peak_mib(backend):
    """Peak GPU memory in MiB where the backend reports it, else None."""
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            if tf.config.list_physical_devices("GPU"):
                return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return torch.cuda.max_memory_allocated() / 2**20
        elif backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "gpu":
                return device.memory_stats()["peak_bytes_in_use"] / 2**20
    except (KeyError, RuntimeError, AttributeError):
        return None
    return None


def random_batch(batch_size, num_points, seed=0):
    """Random sky maps: [points (B, P, 3), features (B, P, 4)] and labels (B,)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    shape = (batch_size, num_points)
    directions = rng.normal(size=shape + (3,))
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    energies = rng.uniform(0.95, 1.0, size=shape + (1,))
    features = np.concatenate([directions, energies], axis=-1).astype("float32")
    points = features[..., :3].copy()
    labels = rng.integers(0, 2, size=batch_size)
    return [points, features], labels


def time_training(model, inputs, labels, steps, warmup):
    """Wall and CPU milliseconds of each of ``steps`` training steps, after ``warmup``."""
    import numpy as np

    for _ in range(warmup):
        model.train_on_batch(inputs, labels)
    durations_ms, cpu_ms = [], []
    for _ in range(steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = model.train_on_batch(inputs, labels)
        float(np.asarray(loss))
        durations_ms.append(1e3 * (time.perf_counter() - start))
        cpu_ms.append(1e3 * (time.process_time() - cpu_start))
    return durations_ms, cpu_ms


def report(title, batch_size, durations_ms, cpu_ms, load_before):
    """Print the figures of a timed training run."""
    best, median = min(durations_ms), statistics.median(durations_ms)
    print(title)
    print(f"ms/step: best {best:.0f}, median {median:.0f}")
    print(
        f"CPU time per step (all threads, less sensitive to other load): median "
        f"{statistics.median(cpu_ms):.0f} ms"
    )
    print(f"samples/s (median): {1e3 * batch_size / median:.0f}")
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak_rss_mib:.0f} MiB")
    print(
        f"load average (1 min) before and after: {load_before:.1f}, "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


def main():
    arguments = parse_arguments()
    os.environ["KERAS_BACKEND"] = arguments.backend
    sys.path.insert(0, REPOSITORY)
    import keras

    inputs, labels = random_batch(arguments.batch_size, arguments.points)
    load_before = os.getloadavg()[0]
    model = reference_model(
        arguments.points, arguments.plain, True if arguments.jit_compile else "auto"
    )
    durations_ms, cpu_ms = time_training(
        model, inputs, labels, arguments.steps, arguments.warmup
    )
    title = (
        f"backend {keras.backend.backend()}, batch {arguments.batch_size}, "
        f"{arguments.points} points, {'plain' if arguments.plain else 'default'} path, "
        f"jit_compile={model.jit_compile}, {arguments.steps} steps"
    )
    report(title, arguments.batch_size, durations_ms, cpu_ms, load_before)
    gpu_mib = gpu_peak_mib(arguments.backend)
    if gpu_mib is not None:
        print(f"peak GPU memory: {gpu_mib:.0f} MiB")


if __name__ == "__main__":
    main()
