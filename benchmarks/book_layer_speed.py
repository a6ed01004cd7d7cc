"""Training speed and peak memory of the book's Keras 2 EdgeConv layer, for comparison.

The reference model of ``edgeconv_speed.py``, built with the layer that the book's
exercise downloads, on Keras 2 (the ``tf_keras`` package), on the same random data and
with the same timing. The book's layer is not part of this repository: ``FETCH`` below,
also printed by ``--help``, says how to get it. Compare the figures with those of
``edgeconv_speed.py`` run on the same machine, one after the other.
"""

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from edgeconv_speed import random_batch, report, time_training
from reference_kernel import reference_network

BOOK_LAYER_URL = (
    "https://raw.githubusercontent.com/DeepLearningForPhysicsResearchBook/"
    "deep-learning-physics/main/edgeconv.py"
)
FETCH = f"""Fetch the book's layer and Keras 2 first:

    pip install "tf_keras~=2.21.0"   # the Keras 2 release of your TensorFlow version
    curl -o /tmp/book_edgeconv.py {BOOK_LAYER_URL}
    python benchmarks/book_layer_speed.py --layer /tmp/book_edgeconv.py --steps 30
"""


def parse_arguments():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=FETCH,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--layer", type=Path, required=True, help="the book's edgeconv.py"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    arguments = parser.parse_args()
    if not arguments.layer.is_file():
        parser.error(f"--layer {arguments.layer} is not a file. {FETCH}")
    return arguments


def main():
    arguments = parse_arguments()
    # tensorflow.keras must mean Keras 2 for the book's layer: set before TensorFlow loads.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    if importlib.util.find_spec("tf_keras") is None:
        sys.exit(f"The book's layer needs Keras 2 (tf_keras). {FETCH}")
    import tf_keras
    from tensorflow import keras

    spec = importlib.util.spec_from_file_location("book_edgeconv", arguments.layer)
    book = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(book)

    model = reference_network(keras, book.EdgeConv, arguments.points)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")

    inputs, labels = random_batch(arguments.batch_size, arguments.points)
    load_before = os.getloadavg()[0]
    durations_ms, cpu_ms = time_training(
        model, inputs, labels, arguments.steps, arguments.warmup
    )
    title = (
        f"the book's Keras 2 layer (tf_keras {tf_keras.__version__}), batch "
        f"{arguments.batch_size}, {arguments.points} points, {arguments.steps} steps"
    )
    report(title, arguments.batch_size, durations_ms, cpu_ms, load_before)


if __name__ == "__main__":
    main()
