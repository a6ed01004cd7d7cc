"""Writing, reading, checking, simulating and downloading cr_sphere.npz."""

import hashlib
import os

import healpy as hp
import numpy as np
import pytest

import cosmic_rays
from cosmic_rays.__main__ import main
from cosmic_rays.dataset import (
    DataSetError,
    load_cr_sphere,
    read_cr_sphere,
    validate_cr_sphere,
    write_cr_sphere,
)
from cosmic_rays.lens import Lens, default_rigidity_edges_ev

NSIDE = 16


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Point DATA_DIR at a fresh folder and make the simulator use a cheap lens."""
    monkeypatch.setattr(cosmic_rays, "DATA_DIR", tmp_path / "data")
    edges = default_rigidity_edges_ev(n_bins=4)
    pixels = np.stack(hp.pix2vec(NSIDE, np.arange(hp.nside2npix(NSIDE)), nest=True), -1)
    identity = Lens(NSIDE, edges, np.broadcast_to(pixels, (4,) + pixels.shape), "none")
    monkeypatch.setattr("cosmic_rays.lens.load_or_build_lens", lambda *a, **k: identity)
    return tmp_path / "data"


def small_valid_arrays(n_maps=6, n_events=20, seed=0):
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n_maps, n_events, 3))
    xyz /= np.linalg.norm(xyz, axis=-1, keepdims=True)
    energy = rng.uniform(0.96, 1.0, size=(n_maps, n_events, 1))
    data = np.concatenate([xyz, energy], axis=-1).astype(np.float32)
    label = np.arange(n_maps) % 2
    return {"data": data, "label": label}


def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_same_seed_gives_byte_identical_file(tmp_path):
    first, second, other = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    assert main(["simulate", "--maps", "8", "--events", "50", "--out", str(first)]) == 0
    assert (
        main(["simulate", "--maps", "8", "--events", "50", "--out", str(second)]) == 0
    )
    assert (
        main(
            [
                "simulate",
                "--maps",
                "8",
                "--events",
                "50",
                "--out",
                str(other),
                "--seed",
                "2",
            ]
        )
        == 0
    )
    assert sha256(first) == sha256(second)
    assert sha256(first) != sha256(other)


def test_simulated_file_follows_the_contract(tmp_path):
    path = tmp_path / "maps.npz"
    main(
        [
            "simulate",
            "--maps",
            "10",
            "--events",
            "40",
            "--sources",
            "2",
            "--signal-fraction",
            "0.25",
            "--out",
            str(path),
            "--seed",
            "5",
        ]
    )
    result = read_cr_sphere(path)
    assert result["data"].shape == (10, 40, 4) and result["data"].dtype == np.float32
    assert result["label"].shape == (10,) and result["label"].sum() == 5
    assert result["source_index"].shape == (10, 40)
    assert result["source_directions"].shape == (10, 2, 3)
    signal = result["label"] == 1
    assert np.all((result["source_index"][signal] >= 0).sum(axis=1) == 10)
    assert np.all(result["source_index"][~signal] == -1)
    assert result["parameters"]["seed"] == 5
    assert result["parameters"]["n_sources"] == 2


def test_existing_file_is_not_overwritten_without_force(tmp_path, capsys):
    path = tmp_path / "maps.npz"
    path.write_bytes(b"precious")
    assert main(["simulate", "--maps", "4", "--events", "10", "--out", str(path)]) == 2
    assert "--force" in capsys.readouterr().err
    assert path.read_bytes() == b"precious"
    assert (
        main(
            ["simulate", "--maps", "4", "--events", "10", "--out", str(path), "--force"]
        )
        == 0
    )
    assert read_cr_sphere(path)["data"].shape == (4, 10, 4)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np.lib.format, "write_array", interrupt)
    path = tmp_path / "maps.npz"
    with pytest.raises(KeyboardInterrupt):
        write_cr_sphere(path, small_valid_arrays())
    assert os.listdir(tmp_path) == []


def test_file_with_only_data_and_label_is_accepted(tmp_path):
    path = write_cr_sphere(tmp_path / "plain.npz", small_valid_arrays())
    result = read_cr_sphere(path)
    assert sorted(result) == ["data", "label"]
    assert result["label"].dtype == np.int64


def corrupt(key, value):
    arrays = small_valid_arrays()
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value(arrays[key])
    return arrays


def set_first(column, value):
    def change(data):
        data = data.copy()
        data[0, 0, column] = value
        return data

    return change


@pytest.mark.parametrize(
    "arrays, message",
    [
        (corrupt("label", None), "lacks the key(s) ['label']"),
        (corrupt("data", lambda d: d[..., :3]), "expected (N, 500, 4)"),
        (corrupt("label", lambda label: label[:-1]), "label of shape (5,)"),
        (corrupt("data", set_first(3, np.nan)), "non-finite values"),
        (corrupt("data", set_first(0, 3.0)), "non-unit direction vectors"),
        (corrupt("data", lambda d: d * [1, 1, 1, 60]), "normalised energies"),
        (corrupt("label", lambda label: label + 1), "outside {0, 1}"),
    ],
    ids=["missing key", "shape", "label length", "nan", "non-unit", "energy", "label"],
)
def test_bad_files_are_refused_with_the_problem_and_the_fix(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataSetError) as error:
        read_cr_sphere(path)
    assert message in str(error.value)
    assert "python -m cosmic_rays simulate" in str(error.value)


def test_inconsistent_source_index_is_refused():
    arrays = small_valid_arrays()
    arrays["source_index"] = np.zeros(arrays["data"].shape[:2], dtype=np.int8)
    with pytest.raises(DataSetError, match="background maps"):
        validate_cr_sphere(arrays)


def test_a_file_that_is_not_npz_is_refused(tmp_path):
    path = tmp_path / "cr_sphere.npz"
    path.write_text("<html>quota exceeded</html>")
    with pytest.raises(DataSetError, match="could not be read"):
        read_cr_sphere(path)


def test_missing_file_is_simulated_at_the_default_path(data_dir):
    result = load_cr_sphere(n_maps=6, seed=3, progress=False)
    assert (data_dir / "cr_sphere_6maps_seed3.npz").exists()
    assert result["data"].shape == (6, 500, 4)
    again = load_cr_sphere(n_maps=6, seed=3)
    np.testing.assert_array_equal(result["data"], again["data"])


def test_cached_file_from_other_settings_is_refused(data_dir):
    from cosmic_rays.skymaps import SkyMapParameters

    load_cr_sphere(n_maps=6, seed=3, progress=False)
    other = SkyMapParameters(signal_fraction=0.2)
    with pytest.raises(DataSetError, match=r"signal_fraction: file .*, asked 0.2"):
        load_cr_sphere(n_maps=6, seed=3, parameters=other)


def test_failed_download_says_so_and_how_to_simulate(tmp_path, monkeypatch):
    import gdown

    def no_network(url, output, quiet=False):
        raise ConnectionError("no route to host")

    monkeypatch.setattr(gdown, "download", no_network)
    path = tmp_path / "cr_sphere.npz"
    with pytest.raises(RuntimeError) as error:
        load_cr_sphere(path, source="download")
    assert "Could not download" in str(error.value)
    assert "source='simulate'" in str(error.value)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_downloaded_html_page_is_refused_and_removed(tmp_path, monkeypatch):
    import gdown

    def quota_page(url, output, quiet=False):
        with open(output, "w") as handle:
            handle.write("<html>Too many users have viewed this file</html>")
        return output

    monkeypatch.setattr(gdown, "download", quota_page)
    path = tmp_path / "cr_sphere.npz"
    with pytest.raises(RuntimeError, match="not usable"):
        load_cr_sphere(path, source="download")
    assert os.listdir(tmp_path) == []
