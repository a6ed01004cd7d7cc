"""Test accuracy and AUC of the exercise's reference network on simulated sky maps.

The reference network is the course's DGCNN: three EdgeConv layers with k = 8 and edge
networks of width 8, 16 and 32 (the first two on the sky graph, the third on a dynamic
graph), global average pooling and a softmax over the two classes; Adam (learning rate
1e-3), batches of 64, the last fifth of the maps as test set. The full exercise trains
10 epochs on 40 000 maps (about 30 minutes on 2 CPU cores); a quicker proxy is e.g.
``--maps 10000 --epochs 3``, which lands a few per cent below the full run.

Usage (from the repository root)::

    python benchmarks/reference_accuracy.py --maps 10000 --epochs 3
    python benchmarks/reference_accuracy.py --maps 10000 --epochs 3 --signal-fraction 0.08

Sky-map settings not given keep the defaults of ``cosmic_rays.skymaps.SkyMapParameters``.
The maps are simulated into a temporary folder unless ``--data`` names a file.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from cosmic_rays.dataset import read_cr_sphere, simulate_cr_sphere  # noqa: E402
from cosmic_rays.skymaps import SkyMapParameters  # noqa: E402
from edgeconv import EdgeConv  # noqa: E402
from reference_kernel import reference_network  # noqa: E402


def compiled_network(n_events):
    """The exercise's DGCNN (widths 8/16/32, k = 8), compiled as in the lesson."""
    model = reference_network(keras, EdgeConv, n_events)
    model.compile(
        loss="categorical_crossentropy",
        optimizer=keras.optimizers.Adam(learning_rate=1e-3),
        metrics=["accuracy"],
    )
    return model


def network_inputs(maps):
    points = np.ascontiguousarray(maps[..., :3])
    return [points, np.concatenate([maps[..., 3:], points], axis=-1)]


def main():
    defaults = SkyMapParameters()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", default=None, help="existing cr_sphere .npz to use")
    parser.add_argument(
        "--signal-fraction", type=float, default=defaults.signal_fraction
    )
    parser.add_argument("--sources", type=int, default=defaults.n_sources)
    parser.add_argument("--smearing", type=float, default=defaults.smearing_rad_at_10ev)
    arguments = parser.parse_args()

    start = time.perf_counter()
    if arguments.data:
        sky = read_cr_sphere(arguments.data)
    else:
        parameters = SkyMapParameters(
            signal_fraction=arguments.signal_fraction,
            n_sources=arguments.sources,
            smearing_rad_at_10ev=arguments.smearing,
        )
        with tempfile.TemporaryDirectory() as folder:
            simulate_cr_sphere(
                Path(folder) / "maps.npz",
                arguments.maps,
                arguments.seed,
                parameters,
                progress=False,
            )
            sky = read_cr_sphere(Path(folder) / "maps.npz")
    data, label = sky["data"][: arguments.maps], sky["label"][: arguments.maps]
    simulated = time.perf_counter() - start

    n_test = len(data) // 5
    y = keras.utils.to_categorical(label, 2)
    keras.utils.set_random_seed(arguments.seed)
    model = compiled_network(data.shape[1])
    start = time.perf_counter()
    model.fit(
        network_inputs(data[:-n_test]),
        y[:-n_test],
        batch_size=64,
        epochs=arguments.epochs,
        verbose=2,
    )
    trained = time.perf_counter() - start
    probability = model.predict(
        network_inputs(data[-n_test:]), batch_size=256, verbose=0
    )[:, 1]
    accuracy = np.mean((probability > 0.5) == label[-n_test:])
    auc = roc_auc_score(label[-n_test:], probability)
    # The same network with BatchNormalization on the statistics of each test batch of
    # 64 instead of its moving averages: a large gap means the moving averages lag.
    test_inputs = network_inputs(data[-n_test:])
    batch_probability = np.concatenate(
        [
            keras.ops.convert_to_numpy(
                model([part[i : i + 64] for part in test_inputs], training=True)
            )[:, 1]
            for i in range(0, n_test, 64)
        ]
    )
    batch_accuracy = np.mean((batch_probability > 0.5) == label[-n_test:])

    print(f"parameters: {sky.get('parameters', 'from file')}")
    print(f"maps {len(data)} (test {n_test}), epochs {arguments.epochs}")
    print(f"data {simulated:.0f} s, training {trained:.0f} s")
    print(
        f"test accuracy {accuracy:.4f}, AUC {auc:.4f} (inference mode, as the notebook)"
    )
    print(f"test accuracy with per-batch BatchNorm statistics {batch_accuracy:.4f}")


if __name__ == "__main__":
    main()
