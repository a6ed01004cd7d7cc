"""The sky-map data set ``cr_sphere.npz``: simulate, write, check, load or download.

The file follows the data contract of the course (``data`` (N, 500, 4) float32 with unit
vector x, y, z in galactic coordinates and the normalised energy log10(E / eV) / 20.5,
``label`` (N,) integer, 1 for maps with source events). A simulated file also carries
``source_index`` (N, 500), the source of each event (-1 for background),
``source_directions`` (N, S, 3) (zero rows for background maps) and ``parameters``, a JSON
string with the simulation parameters and the seed.
"""

import json
import logging
import os
from pathlib import Path

import numpy as np

__all__ = [
    "ORIGINAL_URL",
    "DataSetError",
    "default_path",
    "load_cr_sphere",
    "read_cr_sphere",
    "simulate_cr_sphere",
    "validate_cr_sphere",
    "write_cr_sphere",
]

logger = logging.getLogger(__name__)

#: The book's original data set (Google Drive), as linked from the original exercise.
ORIGINAL_URL = (
    "https://drive.google.com/u/0/uc?export=download&confirm=HgGH"
    "&id=1XKN-Ik7BDyMWdQ230zWS2bNxXL3_9jZq"
)

#: How far |(x, y, z)| may stray from 1 (float32 storage rounds at about 1e-7).
UNIT_TOLERANCE = 1e-3

SIMULATE_HINT = (
    "python -m cosmic_rays simulate --maps 50000 --out data/cr_sphere.npz --seed 1"
)


class DataSetError(ValueError):
    """A sky-map file that does not follow the data contract."""


def default_path(n_maps=50000, seed=1):
    """Where :func:`load_cr_sphere` keeps a data set: ``DATA_DIR/cr_sphere.npz``.

    The default data set (50 000 maps, seed 1) is ``cr_sphere.npz``; others get their size
    and seed in the name, so a small test set never shadows the full one.
    """
    from cosmic_rays import DATA_DIR

    if n_maps == 50000 and seed == 1:
        return Path(DATA_DIR) / "cr_sphere.npz"
    return Path(DATA_DIR) / f"cr_sphere_{n_maps}maps_seed{seed}.npz"


def _regenerate_hint(name):
    """How to make a good file at ``name`` (a path, or a description of the data)."""
    out = name if str(name).endswith(".npz") else "data/cr_sphere.npz"
    return (
        f"regenerate it with `python -m cosmic_rays simulate --maps N --seed S --out {out}"
        " --force` (from the repository root), or delete it and let load_cr_sphere() "
        "simulate it again"
    )


def validate_cr_sphere(arrays, name="the data set"):
    """Check arrays against the data contract; raise DataSetError naming the problem.

    Parameters
    ----------
    arrays : mapping
        At least ``data`` and ``label``; ``source_index``, ``source_directions`` and
        ``parameters`` are checked when present.
    name : str
        How to call the data in messages (usually the file name).
    """
    fix = _regenerate_hint(name)
    missing = [key for key in ("data", "label") if key not in arrays]
    if missing:
        raise DataSetError(
            f"{name} lacks the key(s) {missing}; expected at least 'data' (N, 500, 4) "
            f"and 'label' (N,): {fix}."
        )
    data, label = np.asarray(arrays["data"]), np.asarray(arrays["label"])
    if (
        data.ndim != 3
        or data.shape[-1] != 4
        or data.shape[0] == 0
        or data.shape[1] == 0
    ):
        raise DataSetError(
            f"{name} has data of shape {data.shape}; expected (N, 500, 4) with x, y, z "
            f"and normalised energy per event: {fix}."
        )
    if label.shape != (data.shape[0],):
        raise DataSetError(
            f"{name} has label of shape {label.shape} for {data.shape[0]} maps; expected "
            f"({data.shape[0]},): {fix}."
        )
    if not np.issubdtype(data.dtype, np.floating):
        raise DataSetError(
            f"{name} has data of dtype {data.dtype}; expected float32: {fix}."
        )
    if not np.all(np.isfinite(data)):
        bad = np.argwhere(~np.isfinite(data))[0]
        raise DataSetError(
            f"{name} has non-finite values in data (first at map {bad[0]}, "
            f"event {bad[1]}, "
            f"column {bad[2]}); expected finite numbers: {fix}."
        )
    norm = np.sqrt(np.einsum("...i,...i->...", data[..., :3], data[..., :3]))
    off = np.abs(norm - 1.0) > UNIT_TOLERANCE
    if np.any(off):
        bad = np.argwhere(off)[0]
        raise DataSetError(
            f"{name} has non-unit direction vectors "
            f"(|xyz| = {norm[tuple(bad)]:.4g} at map "
            f"{bad[0]}, event {bad[1]}); expected unit vectors in galactic coordinates: "
            f"{fix}."
        )
    energy = data[..., 3]
    if np.any(energy <= 0) or np.any(energy > 1.05):
        raise DataSetError(
            f"{name} has energies from {energy.min():.4g} to {energy.max():.4g}; "
            "expected normalised energies log10(E/eV)/20.5 in (0, 1.05] "
            "(about 0.96-1.0 above "
            f"40 EeV): {fix}."
        )
    if not (
        np.issubdtype(label.dtype, np.integer)
        or np.issubdtype(label.dtype, np.bool_)
        or np.all(label == np.round(label))
    ):
        raise DataSetError(f"{name} has non-integer labels; expected 0 or 1: {fix}.")
    outside = ~np.isin(label, (0, 1))
    if np.any(outside):
        raise DataSetError(
            f"{name} has labels {np.unique(label[outside])[:5]} outside {{0, 1}}; "
            f"expected 1 for maps with sources and 0 for isotropic maps: {fix}."
        )
    _validate_extras(arrays, data, label, name, fix)


def _validate_extras(arrays, data, label, name, fix):
    if "source_index" in arrays:
        index = np.asarray(arrays["source_index"])
        if index.shape != data.shape[:2] or not np.issubdtype(index.dtype, np.integer):
            raise DataSetError(
                f"{name} has source_index of shape {index.shape} and dtype "
                f"{index.dtype}; "
                f"expected integers of shape {data.shape[:2]}: {fix}."
            )
        if np.any(index[label == 0] != -1) or np.any(index < -1):
            raise DataSetError(
                f"{name} has source_index entries other than -1 in background maps or "
                f"below -1; expected -1 for background events: {fix}."
            )
    if "source_directions" in arrays:
        sources = np.asarray(arrays["source_directions"])
        if (
            sources.ndim != 3
            or sources.shape[0] != data.shape[0]
            or sources.shape[2] != 3
        ):
            raise DataSetError(
                f"{name} has source_directions of shape {sources.shape}; expected "
                f"({data.shape[0]}, n_sources, 3): {fix}."
            )
        norm = np.linalg.norm(sources, axis=-1)
        if not np.all(np.isfinite(sources)) or np.any(
            (np.abs(norm - 1.0) > UNIT_TOLERANCE) & (norm != 0)
        ):
            raise DataSetError(
                f"{name} has source_directions that are neither unit vectors nor zero; "
                f"expected unit vectors (zero rows for background maps): {fix}."
            )
        if "source_index" in arrays:
            index = np.asarray(arrays["source_index"])
            if index.size and index.max() >= sources.shape[1]:
                raise DataSetError(
                    f"{name} has source_index up to {index.max()} but only "
                    f"{sources.shape[1]} source directions per map: {fix}."
                )
    if "parameters" in arrays:
        try:
            json.loads(str(np.asarray(arrays["parameters"])))
        except json.JSONDecodeError as error:
            raise DataSetError(
                f"{name} has a 'parameters' entry that is not JSON ({error}): {fix}."
            ) from error


def read_cr_sphere(path):
    """Read and validate a sky-map file.

    Returns
    -------
    dict
        ``data`` (N, M, 4) float32 and ``label`` (N,) int64, plus, when the file has them,
        ``source_index`` (N, M) int, ``source_directions`` (N, S, 3) float32 and
        ``parameters`` (a dict, including ``seed``).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except (ValueError, OSError, EOFError) as error:
        raise DataSetError(
            f"{path} could not be read: it is not a valid .npz archive "
            f"({type(error).__name__}); {_regenerate_hint(path)}."
        ) from error
    validate_cr_sphere(arrays, name=str(path))
    result = {
        "data": arrays["data"].astype(np.float32, copy=False),
        "label": arrays["label"].astype(np.int64),
    }
    for key in ("source_index", "source_directions"):
        if key in arrays:
            result[key] = arrays[key]
    if "parameters" in arrays:
        result["parameters"] = json.loads(str(arrays["parameters"]))
    return result


def write_cr_sphere(path, arrays, force=False):
    """Validate and write arrays to ``path`` atomically (temporary file, then rename).

    Raises FileExistsError if ``path`` exists and ``force`` is false.
    """
    from cosmic_rays.lens import _atomic_savez

    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"output path {path} should end in .npz (numpy archive).")
    if path.exists() and not force:
        raise FileExistsError(
            f"{path} exists; pass force=True (command line: --force) to overwrite it, or "
            "choose another path."
        )
    to_write = dict(arrays)
    if isinstance(to_write.get("parameters"), dict):
        to_write["parameters"] = np.str_(
            json.dumps(to_write["parameters"], sort_keys=True)
        )
    validate_cr_sphere(to_write, name=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_savez(path, to_write)
    return path


def simulate_cr_sphere(
    path, n_maps=50000, seed=1, parameters=None, force=False, progress=True, lens=None
):
    """Simulate the data set and write it to ``path`` (see :func:`simulate_maps`).

    Returns the arrays as :func:`read_cr_sphere` does.
    """
    from cosmic_rays.skymaps import SkyMapParameters, simulate_maps

    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(
            f"{path} exists; pass force=True (command line: --force) to overwrite it, or "
            "choose another path."
        )
    parameters = parameters or SkyMapParameters()
    arrays = simulate_maps(n_maps, parameters, seed=seed, lens=lens, progress=progress)
    arrays["parameters"] = {**parameters.to_dict(), "seed": seed, "n_maps": n_maps}
    write_cr_sphere(path, arrays, force=force)
    arrays["parameters"] = dict(arrays["parameters"])
    return arrays


def load_cr_sphere(
    path=None,
    *,
    source="simulate",
    n_maps=50000,
    seed=1,
    parameters=None,
    progress=True,
):
    """Load the sky maps; if the file is missing, simulate them or download the original.

    Parameters
    ----------
    path : path-like, optional
        The file; default :func:`default_path` (``DATA_DIR/cr_sphere.npz`` for 50 000
        maps with seed 1).
    source : {"simulate", "download"}
        What to do when the file is missing (an existing file is read as it is, whatever
        ``n_maps`` and ``seed`` say): run the simulator (default; about a minute
        for 50 000 maps once the lens exists) or fetch the book's original file with
        gdown.
    n_maps, seed, parameters
        Size, seed and :class:`~cosmic_rays.skymaps.SkyMapParameters` of a simulation.
    progress : bool
        Show progress bars.

    Returns
    -------
    dict
        ``data`` (N, 500, 4) float32 (x, y, z, normalised energy) and ``label`` (N,)
        int64; a simulated file adds ``source_index`` (N, 500) int8 (-1: background),
        ``source_directions`` (N, S, 3) float32 and ``parameters`` (dict with the seed).
    """
    if source not in ("simulate", "download"):
        raise ValueError(f"source={source!r}; expected 'simulate' or 'download'.")
    is_cache = path is None
    path = default_path(n_maps, seed) if is_cache else Path(path)
    if path.exists():
        logger.info("reading %s", path)
        arrays = read_cr_sphere(path)
        if is_cache:
            _check_cached_settings(path, arrays, n_maps, seed, parameters)
        return arrays
    if source == "download":
        _download(path)
        return read_cr_sphere(path)
    logger.info("%s is missing: simulating %d maps with seed %d", path, n_maps, seed)
    simulate_cr_sphere(path, n_maps, seed, parameters, progress=progress)
    return read_cr_sphere(path)


def _check_cached_settings(path, arrays, n_maps, seed, parameters):
    """Refuse a cached simulation made with other settings than the ones asked for.

    The cache is named by size and seed only, so a file left by an older version of the
    simulator (other defaults) or by a call with other parameters would otherwise be
    read silently.
    """
    from cosmic_rays.skymaps import SkyMapParameters

    stored = arrays.get("parameters")
    if stored is None:
        return
    wanted = {
        **(parameters or SkyMapParameters()).to_dict(),
        "seed": seed,
        "n_maps": n_maps,
    }
    differing = sorted(
        f"{key}: file {stored.get(key)!r}, asked {value!r}"
        for key, value in json.loads(json.dumps(wanted)).items()
        if stored.get(key) != value
    )
    if differing:
        raise DataSetError(
            f"{path} was simulated with other settings than asked for "
            f"({'; '.join(differing)}). Delete it to simulate it again with the current "
            "settings, or pass path= to keep several data sets."
        )


def _download(path):
    """Fetch the book's original file with gdown into ``path`` (atomically)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.download")
    advice = (
        f"Could not download the original data set from Google Drive ({ORIGINAL_URL}) to "
        f"{path}. Simulate it instead: load_cr_sphere(source='simulate') or "
        f"`{SIMULATE_HINT}`."
    )
    try:
        import gdown

        result = gdown.download(ORIGINAL_URL, str(temporary), quiet=False)
        if result is None or not temporary.exists():
            raise RuntimeError(advice)
        read_cr_sphere(temporary)
        os.replace(temporary, path)
    except RuntimeError:
        raise
    except DataSetError as error:
        raise RuntimeError(
            f"{advice} The downloaded file is not usable: {error}"
        ) from error
    except Exception as error:  # gdown raises many kinds (network, quota, HTML pages)
        raise RuntimeError(f"{advice} The download failed with: {error!r}") from error
    finally:
        if temporary.exists():
            temporary.unlink()
