"""Encoders are compared by their weights, not by name or folder: a copied folder is the same
encoder, a folder with one byte changed is another; the digest is cached in-process and next to
the weights, and a folder that does not exist (yet) is compared as before, by name and folder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from polychromic import encoders
from polychromic.encoders import DIGEST_CACHE, same_encoder, weights_digest


def fake_encoder(folder: Path, seed: int = 0) -> Path:
    """A tiny sentence-encoder folder: a config, a small safetensors file and a .bin one level
    down (weights at any depth count)."""
    rng = np.random.default_rng(seed)
    (folder / "1_Dense").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    save_file({"weight": rng.normal(size=(8, 4)).astype(np.float32)},
              str(folder / "model.safetensors"))
    (folder / "1_Dense" / "pytorch_model.bin").write_bytes(rng.bytes(64))
    return folder


def flip_one_byte(path: Path, keep_mtime: bool = False) -> None:
    """Change the last byte of `path` (size unchanged; the mtime too when `keep_mtime`)."""
    info = path.stat()
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    if keep_mtime:
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))


@pytest.fixture(autouse=True)
def fresh_digests(monkeypatch):
    """Each test starts without in-process digests (as a new process would)."""
    monkeypatch.setattr(encoders, "_DIGESTS", {})


def test_a_copied_folder_is_the_same_encoder_and_one_byte_changed_is_not(tmp_path):
    original = fake_encoder(tmp_path / "reward")
    copy = Path(shutil.copytree(original, tmp_path / "copy"))
    assert weights_digest(str(copy)) == weights_digest(str(original))
    assert same_encoder(str(original), str(copy))
    flip_one_byte(copy / "model.safetensors")
    assert weights_digest(str(copy)) != weights_digest(str(original))
    assert not same_encoder(str(original), str(copy))
    other = fake_encoder(tmp_path / "other", seed=1)  # same files and sizes, other weights
    assert not same_encoder(str(original), str(other))


def test_the_digest_covers_every_weight_file_and_its_path(tmp_path):
    original = fake_encoder(tmp_path / "reward")
    digest = weights_digest(str(original))
    copy = Path(shutil.copytree(original, tmp_path / "copy"))
    flip_one_byte(copy / "1_Dense" / "pytorch_model.bin")
    assert weights_digest(str(copy)) != digest
    renamed = Path(shutil.copytree(original, tmp_path / "renamed"))
    (renamed / "model.safetensors").rename(renamed / "weights.safetensors")
    assert weights_digest(str(renamed)) != digest
    (original / "README.md").write_text("not a weight file", encoding="utf-8")
    assert weights_digest(str(original)) == digest


def test_the_digest_is_cached_next_to_the_weights_and_recomputed_when_they_change(
        tmp_path, monkeypatch):
    folder = fake_encoder(tmp_path / "reward")
    digest = weights_digest(str(folder))
    cached = json.loads((folder / DIGEST_CACHE).read_text(encoding="utf-8"))
    assert cached["sha256"] == digest
    assert [name for name, _, _ in cached["files"]] == ["1_Dense/pytorch_model.bin",
                                                        "model.safetensors"]

    def no_hashing(*args):
        raise AssertionError("hashed again")

    monkeypatch.setattr(encoders, "_hash_weights", no_hashing)
    assert weights_digest(str(folder)) == digest  # in-process
    monkeypatch.setattr(encoders, "_DIGESTS", {})
    assert weights_digest(str(folder)) == digest  # from the file, as a new process
    monkeypatch.undo()
    monkeypatch.setattr(encoders, "_DIGESTS", {})
    flip_one_byte(folder / "model.safetensors")  # a new mtime: the cache is stale
    assert weights_digest(str(folder)) != digest
    assert json.loads((folder / DIGEST_CACHE).read_text())["sha256"] != digest


def test_a_cache_file_copied_with_the_folder_is_not_trusted(tmp_path):
    """copytree keeps mtimes and sizes; a byte changed with its mtime kept still counts,
    since the cache file names the folder it was written for."""
    original = fake_encoder(tmp_path / "reward")
    digest = weights_digest(str(original))
    copy = Path(shutil.copytree(original, tmp_path / "copy"))
    assert (copy / DIGEST_CACHE).is_file()
    flip_one_byte(copy / "model.safetensors", keep_mtime=True)
    assert weights_digest(str(copy)) != digest
    assert not same_encoder(str(original), str(copy))


def test_a_folder_that_is_not_writable_keeps_no_cache(tmp_path, monkeypatch):
    folder = fake_encoder(tmp_path / "reward")

    def refuse(*args, **kwargs):
        raise PermissionError("read-only")

    monkeypatch.setattr(encoders.tempfile, "mkstemp", refuse)
    digest = weights_digest(str(folder))
    assert len(digest) == 64 and not (folder / DIGEST_CACHE).exists()


def test_folders_without_weights_are_compared_as_before(tmp_path, monkeypatch):
    """A path that does not exist, a folder without weight files, a known name not assembled
    yet: no digest, no crash, and the comparison is by name and folder."""
    monkeypatch.setenv("POLYCHROMIC_CACHE", str(tmp_path / "cache"))  # mpnet not assembled
    monkeypatch.setattr(encoders, "assemble_mpnet", lambda: pytest.fail("assembled"))
    folder = fake_encoder(tmp_path / "reward")
    missing = str(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        weights_digest(missing)
    with pytest.raises(FileNotFoundError):
        weights_digest("all-mpnet-base-v2")
    assert not same_encoder(missing, str(folder))
    assert not same_encoder("all-mpnet-base-v2", str(folder))
    empty = [tmp_path / "empty_a", tmp_path / "empty_b"]
    for path in empty:
        path.mkdir()
    with pytest.raises(FileNotFoundError, match="no weight files"):
        weights_digest(str(empty[0]))
    assert not same_encoder(str(empty[0]), str(empty[1]))
    assert same_encoder(str(empty[0]), str(empty[0]) + "/")  # one folder


def test_a_copy_of_minilm_is_minilm(tmp_path):
    """The real reward encoder (91 MB): a copied folder has its digest, so it is the same
    encoder as the name `all-MiniLM-L6-v2`."""
    source = encoders.minilm_path()
    size = sum(path.stat().st_size for path in source.rglob("*") if path.is_file())
    if size > 100 * 2**20:
        pytest.skip(f"the MiniLM folder holds {size / 2**20:.0f} MB")
    copy = shutil.copytree(source, tmp_path / "minilm", ignore=shutil.ignore_patterns(
        DIGEST_CACHE))
    assert same_encoder("all-MiniLM-L6-v2", str(copy))
    assert not same_encoder("all-mpnet-base-v2", str(copy))
