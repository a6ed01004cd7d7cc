# %% [markdown]
# # Signal classification with dynamic graph CNNs
#
# [![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/dgcnn-course/cosmic-ray-dgcnn/blob/main/notebooks/dgcnn_cosmic_rays.ipynb)
# [![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/dgcnn-course/cosmic-ray-dgcnn/main?labpath=notebooks%2Fdgcnn_cosmic_rays.ipynb)
#
# In this lesson you build a dynamic graph convolutional neural network (DGCNN) with
# Keras 3 and train it to tell apart two kinds of simulated sky maps of ultra-high-energy
# cosmic rays: maps that contain particles from a few sources, and maps whose arrival
# directions are isotropic. You will
#
# 1. look at the physics that makes sources visible as "streets" on the sky,
# 2. write the edge network of an EdgeConv layer and stack three of them into a DGCNN,
# 3. train it, measure its accuracy and ROC curve on 10 000 test maps,
# 4. and draw the graphs the network builds, to see how a *dynamic* graph leaves the sky
#    behind and connects events that the network finds similar.
#
# Cells marked **Exercise** are the ones you complete. Training is quicker on a GPU
# (on Colab: *Runtime > Change runtime type > GPU*), but the notebook also runs on a
# laptop's CPU.

# %% [markdown]
# ## 1. The physics: deflected cosmic rays
#
# Cosmic rays above about 40 EeV (4 x 10^19 eV) are almost all atomic nuclei from outside
# our Galaxy. On their way to Earth they cross the galactic magnetic field **B**, which
# bends their paths by the Lorentz force
#
# $$\frac{\mathrm{d}\vec p}{\mathrm{d}t} = q\,\vec v \times \vec B .$$
#
# A particle of energy E and charge Ze circles with the Larmor radius
# $r_L \approx 1.08\,\mathrm{kpc} \cdot (E / \mathrm{EeV}) / (Z \cdot B / \mu\mathrm{G})$,
# so the deflection shrinks as the rigidity E / Z grows. In the regular field model of
# Jansson and Farrar (2012, ApJ 757, 14) protons are deflected by a median of about
# 25 degrees at 10 EeV, 7.5 degrees at 40 EeV and 3 degrees at 100 EeV (as measured with
# this course's simulator; the README lists the figures).
#
# Two consequences make this a classification problem:
#
# - **Streets.** Particles from one source arrive along a line on the sky, ordered by
#   energy: the most energetic ones close to the source's direction, the less energetic
#   ones further out, where the field has pushed them.
# - **Isotropy.** Many weak sources and strong deflections wash out all structure: the
#   background is an isotropic sky, the same in every direction.
#
# Each sky map holds 500 events: the arrival direction as a unit vector (x, y, z) in
# galactic coordinates (x towards the Galactic centre, z towards the Galactic north pole)
# and the energy, normalised as log10(E / eV) / 20.5. A *signal* map contains streets from
# a few sources on top of isotropic events; a *background* map is isotropic. The task:
# given a map, decide which of the two it is.
#
# A sky map is a set of points on a sphere, without an order and without a grid. A graph
# network is the natural tool: it treats each event as a node and learns from the
# relations between an event and its neighbours, which is exactly where a street shows up.

# %% [markdown]
# ## 2. Set-up
#
# On Colab the next cell fetches this course's code (`edgeconv.py` and the `cosmic_rays`
# package) with a shallow clone of the repository and installs `healpy`, the only package
# Colab lacks. On your own machine or on Binder it only makes the repository's code
# importable. It also quietens TensorFlow's start-up messages, which must happen before
# Keras is imported.

# %%
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPOSITORY_URL = "https://github.com/dgcnn-course/cosmic-ray-dgcnn"

if "google.colab" in sys.modules:
    checkout = Path("cosmic-ray-dgcnn")
    if not checkout.exists():
        subprocess.run(["git", "clone", "--depth", "1", REPOSITORY_URL], check=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "healpy"], check=True
    )
    sys.path.insert(0, str(checkout.resolve()))
else:
    # On a clone the notebook runs in solutions/ or notebooks/; the code is one level up.
    for folder in (Path.cwd(), *Path.cwd().parents[:2]):
        if (folder / "edgeconv.py").exists():
            sys.path.insert(0, str(folder))
            break

# %% [markdown]
# The versions and the hardware differ from machine to machine; training is much faster
# on a GPU.

# %%
# NBVAL_IGNORE_OUTPUT
import keras
import matplotlib.pyplot as plt
import numpy as np
from keras import layers
from sklearn.metrics import roc_auc_score, roc_curve

from cosmic_rays import DATA_DIR, plotting
from cosmic_rays.dataset import load_cr_sphere
from edgeconv import EdgeConv


def gpu_names():
    """Names of the GPUs the current Keras backend can use."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [gpu.name for gpu in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(device) for device in jax.devices() if device.platform == "gpu"]
    if backend == "torch":
        import torch

        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


print(
    f"Keras {keras.__version__}, backend {keras.backend.backend()}, "
    f"Python {sys.version.split()[0]}"
)
if gpu_names():
    print("GPU:", ", ".join(gpu_names()))
else:
    print(
        "No GPU found: training runs on the CPU, which is much slower than a GPU.\n"
        "On Colab choose Runtime > Change runtime type > GPU, then run all cells again."
    )

# %% [markdown]
# ## 3. The data
#
# `load_cr_sphere()` reads the sky maps from a file under `DATA_DIR` (the folder `data/`
# of the repository unless the environment variable `COSMIC_RAYS_DATA` says otherwise).
# If the file is not there yet, it simulates the maps first, with a progress bar: the
# particles of each source are traced back through the Jansson-Farrar field, and the
# background is drawn isotropically. This takes well under a minute once (about 20 s for
# 50 000 maps on two CPU cores) and is read from the cache afterwards. With `source="download"` it fetches the book's original
# `cr_sphere.npz` instead.
#
# **Quick mode.** Set the environment variable `COURSE_QUICK=1` to shrink the lesson to
# 2 000 maps and 2 epochs, so that it runs end to end in a few minutes on a CPU. The
# tests use it (`python -m pytest` sets it unless you set it yourself); the accuracy is
# then of course much lower. Unset, or `COURSE_QUICK=0`, runs the full lesson:
# 50 000 maps, 40 000 for training and 10 000 for testing, 10 epochs of batches of 64.
#
# **Small machines.** Training this network on batches of 64 maps needs about 2 GB of
# memory, the 50 000 maps another 0.4 GB. mybinder.org gives a session 2 GB, so where
# less than 3.5 GB is available (the container's limit, the variable `MEM_LIMIT` or the
# machine's memory) the next cell falls back to 10 000 maps and batches of 32, and says
# so: enough to run the lesson end to end, with a lower accuracy.


# %%
# NBVAL_IGNORE_OUTPUT
def memory_gib():
    """Memory this session may use: least of MEM_LIMIT, the container limit, the RAM."""
    limits_bytes = []
    if "MEM_LIMIT" in os.environ:
        limits_bytes.append(int(os.environ["MEM_LIMIT"]))
    for cgroup_file in (
        "/sys/fs/cgroup/memory.max",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes",
    ):
        try:
            limits_bytes.append(int(Path(cgroup_file).read_text()))
        except (OSError, ValueError):  # no such file, or "max": no container limit
            pass
    try:
        limits_bytes.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not on Windows
        pass
    return min(limits_bytes, default=float("inf")) / 2**30


QUICK = os.environ.get("COURSE_QUICK", "0") not in ("", "0")
N_MAPS = 2_000 if QUICK else 50_000
EPOCHS = 2 if QUICK else 10
BATCH_SIZE = 64
if memory_gib() < 3.5:
    N_MAPS, BATCH_SIZE = min(N_MAPS, 10_000), 32
    print(f"only {memory_gib():.1f} GiB of memory: using {N_MAPS} maps, batches of 32")
N_TEST = N_MAPS // 5
DATA_SOURCE = "simulate"

print(f"{'quick' if QUICK else 'full'} mode: {N_MAPS} maps, {EPOCHS} epochs")
if DATA_SOURCE == "download":
    sky = load_cr_sphere(DATA_DIR / "cr_sphere_original.npz", source="download")
else:
    sky = load_cr_sphere(n_maps=N_MAPS, seed=1)

# %% [markdown]
# The last fifth of the maps (10 000 of 50 000) is the test set; the network never sees
# it during training. Of the training maps, the last 10 % are kept aside as validation
# data, to watch for over-training while the network learns.
#
# The network gets two inputs per map, as in the original exercise: the **points**, the
# event directions (x, y, z) on which the first graph is built, and the **features** each
# node carries, the normalised energy together with x, y, z.

# %%
data, label = sky["data"][:N_MAPS], sky["label"][:N_MAPS]
x_test, label_test = data[-N_TEST:], label[-N_TEST:]
n_train = len(data) - N_TEST
n_validation = n_train // 10


def network_inputs(maps):
    """Points (x, y, z) and features (energy, x, y, z) of a stack of maps."""
    points = maps[..., :3]
    features = np.concatenate([maps[..., 3:], points], axis=-1)
    return points, features


points, features = network_inputs(data[:1])
print("one map:", data.shape[1:], "= (events, [x, y, z, energy])")
print("points of one map:", points.shape[1:])
print("features of one map:", features.shape[1:])
print(f"test fraction: {N_TEST / len(data):.0%}, validation fraction: 10% of the rest")
print(f"fraction of signal maps: {label.mean():.1f}")

# %% [markdown]
# Handing `model.fit` the whole arrays would make Keras copy them, about 1 GB more for
# the full data set. A `keras.utils.PyDataset` instead cuts each batch from the maps
# when the network asks for it, shuffled anew every epoch, and turns the labels into
# one-hot vectors for the two classes (0 = isotropic, 1 = signal).


# %%
class SkyMapBatches(keras.utils.PyDataset):
    """Batches ((points, features), one-hot labels) cut from sky maps on demand."""

    def __init__(self, maps, labels, batch_size, shuffle=False, seed=1, **kwargs):
        super().__init__(**kwargs)
        self.maps = maps
        self.targets = keras.utils.to_categorical(labels, num_classes=2)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.order = np.arange(len(maps))
        self.on_epoch_end()

    def __len__(self):
        return -(-len(self.maps) // self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        rows = np.sort(rows)
        return network_inputs(self.maps[rows]), self.targets[rows]

    def on_epoch_end(self):
        if self.shuffle:
            self.order = self.rng.permutation(len(self.maps))


train_end = n_train - n_validation
train_batches = SkyMapBatches(
    data[:train_end], label[:train_end], BATCH_SIZE, shuffle=True
)
validation_batches = SkyMapBatches(
    data[train_end:n_train], label[train_end:n_train], BATCH_SIZE
)
test_batches = SkyMapBatches(x_test, label_test, BATCH_SIZE)

# %% [markdown]
# ## 4. Sky maps
#
# Astronomers draw the whole sky in an equal-area projection, here Hammer's, with the
# Galactic centre in the middle and galactic longitude increasing to the **left**, as the
# sky looks from inside. Colour shows the energy. In the signal map the red stars mark the
# true directions of the sources outside the Galaxy (when the data file records them);
# their events arrive displaced from there along streets, the highest energies closest to
# the star. The isotropic map beside it has no such structure. Can you spot the streets by
# eye? The network will have to.

# %%
signal_index = int(np.flatnonzero(label_test == 1)[0])
background_index = int(np.flatnonzero(label_test == 0)[0])
test_sources = None
if "source_directions" in sky:
    test_sources = sky["source_directions"][:N_MAPS][-N_TEST:]

plotting.plot_sky_map_pair(
    x_test[signal_index],
    x_test[background_index],
    source_directions=None if test_sources is None else test_sources[signal_index],
)
plt.show()

# %% [markdown]
# ## 5. The network
#
# ### EdgeConv
#
# An EdgeConv layer (Wang et al. 2019, "Dynamic Graph CNN for Learning on Point Clouds",
# ACM Transactions on Graphics 38, 146, arXiv:1801.07829) connects every event i to its k
# nearest neighbours j and updates its features by
#
# $$x_i' = \frac{1}{k} \sum_{j \in \mathrm{kNN}(i)} h_\Theta(x_i, x_j),$$
#
# where the edge network $h_\Theta$ is a small neural network shared by all edges. The
# layer `EdgeConv(kernel_func, next_neighbors=k)` takes `[points, features]`: the graph is
# built from the points, and $h_\Theta$ reads the features. Give it one tensor and that
# tensor serves as both: then the graph is built in the space of learned features, and it
# changes from layer to layer as the network learns. That is the *dynamic* graph.
#
# ### Exercise 1: the edge network
#
# Complete `kernel_nn(data, nodes)`. It receives `[x_i, x_j]`, the features of a central
# event and of one neighbour (each of shape `(None, C)`), and returns the edge features.
#
# - Give the network the centre and the difference to its neighbour, side by side (the
#   layers `Concatenate` and `Subtract`). The centre carries the absolute position and
#   energy; the difference carries the local structure.
# - Follow with three fully connected layers of `nodes` units with ReLU activation.
# - Hint: batch normalisation after each of them helps a lot: it keeps the activations
#   in a range where training is stable (and makes the Dense layers' bias redundant).


# %%
def kernel_nn(data, nodes=16):
    """Edge network h(x_i, x_j): the features of one edge of the graph."""
    x_i, x_j = data
    raise NotImplementedError(
        "Exercise 1: fill in the body of kernel_nn: build the edge network from x_i, x_j"
    )


# %% [markdown]
# ### Exercise 2: the graph network
#
# The first EdgeConv layer is given: it builds the graph of the 8 nearest events on the
# sky and turns the 4 input features into 8. Complete the network after it:
#
# - a second EdgeConv layer with 16 nodes in its edge network, on the **same sky graph**
#   (points = `points_input`, features = the output of the first layer);
# - a third EdgeConv layer with 32 nodes on a **dynamic graph**: give it the output of the
#   second layer as both points and features;
# - average over all events with `layers.GlobalAveragePooling1D()`, so that the result
#   does not depend on the order of the events;
# - and a `layers.Dense(2, activation="softmax")` layer for the two classes; call its
#   result `output`, from which the cell then builds the model.
#
# Each EdgeConv layer uses k = 8 neighbours here (`next_neighbors=8`).

# %%
keras.utils.set_random_seed(1)
points_input = keras.Input((500, 3), name="points")
features_input = keras.Input((500, 4), name="features")

x = EdgeConv(lambda a: kernel_nn(a, nodes=8), next_neighbors=8)(
    [points_input, features_input]
)
raise NotImplementedError(
    "Exercise 2: build the rest of the network after the first EdgeConv layer"
)

model = keras.Model([points_input, features_input], output, name="dgcnn")
model.summary()

# %% [markdown]
# The edge network of the first layer is a Keras model of its own; its inputs are the
# features of the two ends of one edge (4 each).

# %%
model.layers[2].kernel_func.summary()

# %% [markdown]
# ### Exercise 3: compile the model
#
# Compile the model for the two-class problem: the categorical cross-entropy loss (the
# labels are one-hot), the Adam optimiser with a learning rate of 10^-3, and the
# accuracy as a metric, so that training reports it.

# %%
raise NotImplementedError(
    "Exercise 3: compile the model: loss, optimiser and the accuracy metric"
)

# %% [markdown]
# ## 6. Training
#
# Batches of 64 maps, 10 epochs (2 in quick mode), with the validation maps evaluated
# after every epoch. This is the slow part of the lesson on a CPU (the README lists the
# times we measured); a GPU is much faster.

# %%
# NBVAL_IGNORE_OUTPUT
history = model.fit(
    train_batches, validation_data=validation_batches, epochs=EPOCHS, verbose=2
)

# %% [markdown]
# The training curves: the loss should fall and the accuracy rise for both the training
# and the validation maps. If the validation curve turns up while the training curve keeps
# falling, the network starts to learn the training maps by heart.

# %%
plotting.plot_training_history(history)
plt.show()

# %% [markdown]
# ## 7. Evaluation on the test maps
#
# The network outputs a probability for each class; we call a map signal when its signal
# probability exceeds one half. The ROC curve shows the whole trade-off instead: for each
# threshold, the fraction of signal maps found against the fraction of isotropic maps
# wrongly called signal. The area under it (AUC) is 1 for a perfect classifier and 0.5
# for a coin toss. With the full data set the network should reach a test accuracy in
# the mid-nineties; expect roughly that, not an exact number.

# %%
# NBVAL_IGNORE_OUTPUT
signal_probability = model.predict(test_batches, verbose=0)[:, 1]
predicted = (signal_probability > 0.5).astype(int)
accuracy = np.mean(predicted == label_test)
false_positive_rate, true_positive_rate, _ = roc_curve(label_test, signal_probability)
auc = roc_auc_score(label_test, signal_probability)
print(f"test accuracy on {len(label_test)} maps: {accuracy:.1%}, AUC = {auc:.3f}")

# %%
fig, ax = plt.subplots(figsize=(5, 5), layout="constrained")
plotting.plot_roc_curve(ax, false_positive_rate, true_positive_rate, auc)
plt.show()

# %% [markdown]
# Which maps does the network get wrong? Below are the four test maps it misjudges most.
# Signal maps it misses often have few or faint streets, or streets that happen to run
# through a crowded region; isotropic maps it calls signal may hold a chance alignment of
# energetic events.

# %%
worst = np.argsort(-np.abs(label_test - signal_probability))[:4]
energy_eev = plotting.energy_eev_from_normalised(x_test[worst, :, 3])
fig, axes = plt.subplots(2, 2, figsize=(13, 7), layout="constrained")
for ax, index in zip(axes.flat, worst):
    truth = "signal" if label_test[index] == 1 else "isotropic"
    scatter = plotting.plot_sky_map(
        ax,
        x_test[index],
        source_directions=None if test_sources is None else test_sources[index],
        energy_range_eev=(energy_eev.min(), energy_eev.max()),
        title=f"{truth} map, p(signal) = {signal_probability[index]:.2f}",
    )
fig.colorbar(scatter, ax=axes, shrink=0.6, label="energy E (EeV)")
plt.show()

# %% [markdown]
# ## 8. The graphs the network builds
#
# Which events does each EdgeConv layer connect? A sub-model from the network's inputs to
# the inputs of every EdgeConv layer gives us, for one test map, the points each layer
# builds its graph from; the layer's own `neighbors()` then returns the indices of the k
# neighbours it uses. We draw every edge on the sky.
#
# The first two layers build their graph from the sky positions: short links between
# neighbouring events. The third, dynamic layer builds it from the features the network
# has learned: its edges jump across the sky and connect events that the network finds
# alike, for example events of one street.

# %%
edge_layers = [layer for layer in model.layers if isinstance(layer, EdgeConv)]
graph_points = keras.Model(model.inputs, [layer.input[0] for layer in edge_layers])

one_map = network_inputs(x_test[signal_index : signal_index + 1])
points_per_layer = graph_points.predict(one_map, verbose=0)
neighbors_per_layer = [
    keras.ops.convert_to_numpy(layer.neighbors(points))[0]
    for layer, points in zip(edge_layers, points_per_layer)
]
print("neighbour indices per layer:", [n.shape for n in neighbors_per_layer])

# %%
sky_xyz = x_test[signal_index, :, :3]
energy_eev = plotting.energy_eev_from_normalised(x_test[signal_index, :, 3])
fig, axes = plt.subplots(1, 3, figsize=(18, 4), layout="constrained")
titles = ["EdgeConv 1: sky graph", "EdgeConv 2: sky graph", "EdgeConv 3: dynamic graph"]
for ax, neighbors, title in zip(axes, neighbors_per_layer, titles):
    scatter = plotting.plot_neighbor_graph(
        ax, sky_xyz, neighbors, energy_eev=energy_eev, title=title
    )
fig.colorbar(scatter, ax=axes, shrink=0.8, label="energy E (EeV)")
plt.show()

# %% [markdown]
# How far apart on the sky are the neighbours each layer connects? For the sky graphs the
# median is about ten degrees; for the dynamic graph it is several times larger.

# %%
# NBVAL_IGNORE_OUTPUT
for title, neighbors in zip(titles, neighbors_per_layer):
    separation_deg = plotting.edge_separation_deg(sky_xyz, neighbors)
    print(f"{title}: median edge length {np.median(separation_deg):.1f} deg")

# %% [markdown]
# ## Summary
#
# - Charged cosmic rays from a source arrive along energy-ordered streets; isotropic
#   backgrounds have none. A sky map is a point cloud on the sphere.
# - EdgeConv applies one small edge network to every link of a k-nearest-neighbour graph
#   and averages over the neighbours; graphs built from learned features change during
#   training: a dynamic graph.
# - Three EdgeConv layers, pooling and a softmax separate signal from isotropic maps; the
#   ROC curve and its AUC summarise the trade-off between efficiency and false alarms.
#
# ## Going further
#
# 1. Use `next_neighbors=16` in the dynamic layer. Does the accuracy change?
# 2. Replace the average over neighbours by the maximum (`aggregation="max"`).
# 3. Train on the book's original data set (`DATA_SOURCE = "download"`) and compare.
