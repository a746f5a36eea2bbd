"""One definition of "the same input" (impasto.digest)."""

import torch

from impasto.digest import digest


def test_parts_do_not_run_together():
    assert digest("ab", "c") != digest("a", "bc")
    assert digest(b"ab", b"c") != digest(b"a", b"bc")
    assert digest("ab") != digest(b"ab")  # text and bytes are different kinds


def test_a_tensor_by_its_shape_dtype_and_values():
    x = torch.arange(6, dtype=torch.float32)
    assert digest(x) == digest(x.clone()) == digest(x.reshape(2, 3).T.contiguous().T.reshape(6))
    assert digest(x) != digest(x.reshape(2, 3)) != digest(x.double())
    y = x.clone()
    y[3] += 1e-6
    assert digest(x) != digest(y)


def test_a_file_by_its_bytes_wherever_it_is(tmp_path):
    (tmp_path / "a.png").write_bytes(b"\x89PNG same bytes")
    (tmp_path / "b.png").write_bytes(b"\x89PNG same bytes")
    (tmp_path / "c.png").write_bytes(b"\x89PNG other bytes")
    assert digest(tmp_path / "a.png") == digest(tmp_path / "b.png") != digest(tmp_path / "c.png")
    assert len(digest("x")) == 32 and len(digest("x", size=8)) == 16


def test_errors_keep_their_type_and_picture_across_pickling():
    """A worker in another process (a batch worker, a Ray actor) hands back errors whole."""
    import pickle

    from impasto.engine import Interrupted
    from impasto.errors import ConfigError

    stop = pickle.loads(pickle.dumps(Interrupted(torch.ones(1, 3, 4, 5), None)))
    assert isinstance(stop, Interrupted) and stop.image.shape == (1, 3, 4, 5) and stop.progress is None
    error = pickle.loads(pickle.dumps(ConfigError("size", "must be positive")))
    assert isinstance(error, ConfigError) and error.field == "size" and str(error) == "`size`: must be positive"
