"""The checkpoint file's contract, checked on a hand-built payload (no training run needed).

Every refusal is asserted by its whole message (what a user reads), every accepted edge by the
value loaded back; the atomic save by what an interrupted write leaves behind.
"""

import math
import re
from importlib.metadata import version

import pytest
import torch
from torch import nn

from neuroloop_gpu.control import checkpoint
from neuroloop_gpu.control.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    REQUIRED_KEYS,
    CheckpointError,
    library_versions,
    load_checkpoint,
    load_state,
    save_checkpoint,
)


def payload(**changes) -> dict:
    """The smallest payload ``save_checkpoint`` accepts: a 6 -> 1 actor and critic, a unit normaliser."""
    fields = {
        "config": {"seed": 0},
        "iteration": 3,
        "frames": 96,
        "actor": {"weight": torch.full((1, 6), 0.5), "bias": torch.tensor([0.25])},
        "critic": {"weight": torch.full((1, 6), -0.5), "bias": torch.tensor([1.0])},
        "optimizer": {"state": {}},
        "obs_norm": {"decay": 0.99},
        "obs_loc": torch.arange(6, dtype=torch.float32),
        "obs_scale": torch.linspace(1.0, 2.0, 6),
    }
    fields.update(changes)
    return fields


def written(tmp_path, data: dict, name: str = "bad.pt"):
    """``data`` saved as a whole file (header included), bypassing save_checkpoint's own checks."""
    path = tmp_path / name
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "versions": library_versions(), **data}, path)
    return path


def refused(path, message: str) -> None:
    with pytest.raises(CheckpointError, match="^" + re.escape(message) + "$"):
        load_checkpoint(path)


def test_a_saved_checkpoint_loads_back_with_every_value(tmp_path):
    path = save_checkpoint(tmp_path / "nested" / "run" / "checkpoint.pt", payload())  # parents created
    loaded = load_checkpoint(path)
    assert set(loaded) == set(REQUIRED_KEYS)
    assert (loaded["format"], loaded["format_version"]) == ("neuroloop_gpu.ppo", 1)
    assert (loaded["iteration"], loaded["frames"], loaded["config"]) == (3, 96, {"seed": 0})
    assert torch.equal(loaded["obs_loc"], torch.tensor([0.0, 1, 2, 3, 4, 5]))
    assert torch.equal(loaded["actor"]["bias"], torch.tensor([0.25]))
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]  # no partial file left


def test_library_versions_name_each_distribution_as_installed():
    names = ("neuroloop-gpu", "torch", "torchrl", "tensordict")
    assert library_versions() == {name: version(name) for name in names}


def test_zero_iterations_and_frames_are_a_valid_start(tmp_path):
    loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", payload(iteration=0, frames=0)))
    assert (loaded["iteration"], loaded["frames"]) == (0, 0)


def test_map_location_is_handed_to_torch(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", payload())
    seen = []

    def place(storage, location):  # torch.load calls this once per saved storage
        seen.append(location)
        return storage

    assert torch.equal(load_checkpoint(path, map_location=place)["obs_scale"], torch.linspace(1.0, 2.0, 6))
    assert seen and set(seen) == {"cpu"}


def test_saving_without_a_required_field_is_refused(tmp_path):
    data = payload()
    del data["critic"], data["obs_scale"]
    with pytest.raises(CheckpointError, match=re.escape("refusing to save checkpoint without ['critic', 'obs_scale']")):
        save_checkpoint(tmp_path / "c.pt", data)
    assert not list(tmp_path.iterdir())


def test_an_interrupted_save_keeps_the_earlier_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "checkpoint.pt", payload(iteration=1))
    before = path.read_bytes()

    def crash(obj, target):  # half a file written, then the process is stopped
        target.write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, payload(iteration=2))
    assert path.read_bytes() == before and load_checkpoint(path)["iteration"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "checkpoint.pt.partial"]


def test_a_file_that_is_not_a_checkpoint_names_what_torch_found(tmp_path):
    text = tmp_path / "text.pt"
    text.write_text("hello world")
    try:  # the loader's own exception, named in the message
        torch.load(text, weights_only=True)
    except Exception as error:
        expected = f"checkpoint {text} is truncated or corrupt ({type(error).__name__}: {error})"
    refused(text, expected)


class Arbitrary:
    """Not a tensor, container or number: unpickling it would run arbitrary code in general."""


def test_python_objects_inside_a_checkpoint_are_refused(tmp_path):
    path = written(tmp_path, payload(config={"hook": Arbitrary()}))
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {path} is truncated or corrupt (UnpicklingError")):
        load_checkpoint(path)
    # the file itself is a valid torch archive: only the safe loader refuses it
    assert isinstance(torch.load(path, weights_only=False)["config"]["hook"], Arbitrary)


def test_foreign_files_name_their_format(tmp_path):
    listing = tmp_path / "list.pt"
    torch.save([1, 2], listing)
    refused(listing, f"checkpoint {listing} is not a neuroloop_gpu PPO checkpoint (format 'list')")
    other = tmp_path / "other.pt"
    torch.save({"format": "sb3.ppo"}, other)
    refused(other, f"checkpoint {other} is not a neuroloop_gpu PPO checkpoint (format 'sb3.ppo')")


def test_another_format_version_is_named(tmp_path):
    path = tmp_path / "v2.pt"
    torch.save({**payload(), "format": FORMAT, "format_version": 2, "versions": {}}, path)
    refused(path, f"checkpoint {path} has format_version 2; this version of neuroloop_gpu reads format_version 1")


def test_missing_fields_are_listed(tmp_path):
    data = payload()
    del data["optimizer"], data["frames"]
    path = written(tmp_path, data)
    refused(path, f"checkpoint {path} lacks ['frames', 'optimizer']")


@pytest.mark.parametrize(
    "field,value,problem",
    [
        ("iteration", True, "iteration is True, not an integer >= 0"),  # a bool is not a count
        ("frames", -1, "frames is -1, not an integer >= 0"),
        ("frames", 2.5, "frames is 2.5, not an integer >= 0"),
        ("obs_norm", [0.99], "obs_norm is a list, not a dict"),
        ("obs_loc", torch.zeros(6, dtype=torch.int64), "obs_loc is torch.Size([6]), not a float tensor of shape [6]"),
        ("obs_loc", torch.zeros(3), "obs_loc is torch.Size([3]), not a float tensor of shape [6]"),
        ("obs_scale", [1.0] * 6, "obs_scale is list, not a float tensor of shape [6]"),
        ("obs_loc", torch.tensor([0.0, 0, 0, math.inf, 0, 0]), "obs_loc holds NaN or infinite values"),
        ("obs_scale", torch.tensor([1.0, 1, 1, 1, 1, 0]), "obs_scale holds values <= 0"),
        ("actor", {"weight": [0.5] * 6}, "actor entry weight is a list, not a tensor"),
        ("critic", {"bias": torch.tensor([math.nan])}, "critic weight bias holds NaN or infinite values"),
    ],
)
def test_unusable_fields_are_named(tmp_path, field, value, problem):
    path = written(tmp_path, payload(**{field: value}))
    refused(path, f"checkpoint {path} is unusable: {problem}")


def test_integer_tensors_in_a_network_state_are_accepted(tmp_path):
    # batch-norm style counters are integer tensors: finite by nature, not refused
    state = {**payload()["actor"], "num_batches_tracked": torch.tensor(7)}
    loaded = load_checkpoint(written(tmp_path, payload(actor=state)))
    assert loaded["actor"]["num_batches_tracked"].item() == 7


def test_a_state_that_does_not_fit_names_each_mismatch_on_one_line():
    module = nn.Linear(6, 1)
    weight = module.weight.detach().clone()
    state = {"weight": torch.zeros(2, 6), "bias": torch.zeros(2)}
    with pytest.raises(CheckpointError) as caught:
        load_state(module, state, "run/checkpoint.pt", "actor")
    message = str(caught.value)
    assert "\n" not in message
    prefix = "checkpoint run/checkpoint.pt: the saved actor does not fit the actor this config builds ("
    assert message.startswith(prefix) and message.endswith(")")
    lines = message[len(prefix) : -1].split("; ")
    assert lines[0] == "Error(s) in loading state_dict for Linear:"
    assert [line.split(":")[0] for line in lines[1:]] == [
        "size mismatch for weight",
        "size mismatch for bias",
    ]
    assert torch.equal(module.weight, weight)  # the module keeps its own parameters
