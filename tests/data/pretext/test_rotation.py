"""The rotation task (RotNet): classes rotate on the device; one unrotated view per image."""

from __future__ import annotations

import pytest
import torch

from ssl_rl.data.pretext.rotation import Rotations, RotationTransform


def test_class_k_rotates_by_k_quarter_turns() -> None:
    parts = torch.randn(8, 1, 3, 5, 5)
    idx = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    rotated = Rotations().transform(parts, idx)
    for i, k in enumerate(idx.tolist()):
        assert torch.equal(rotated[i], torch.rot90(parts[i], k, dims=(-2, -1)))
    # Four different views of an asymmetric image.
    one = parts[:1].expand(4, -1, -1, -1, -1)
    views = Rotations().transform(one, torch.arange(4))
    assert len({tuple(v.flatten().tolist()) for v in views}) == 4


def test_two_classes_are_upright_and_upside_down() -> None:
    parts = torch.randn(2, 1, 3, 4, 4)
    rotated = Rotations(2).transform(parts, torch.tensor([0, 1]))
    assert torch.equal(rotated[1], torch.rot90(parts[1], 2, dims=(-2, -1)))
    with pytest.raises(ValueError, match="2 or 4 classes"):
        Rotations(3)


def test_non_square_parts_are_refused() -> None:
    with pytest.raises(ValueError, match="square"):
        Rotations().transform(torch.zeros(1, 1, 3, 4, 5), torch.zeros(1, dtype=torch.long))


def test_transform_gives_one_standardised_view_and_is_fixed_in_eval() -> None:
    image = torch.randint(0, 256, (3, 90, 120), dtype=torch.uint8)
    train = RotationTransform(resize=80, crop=64, size=32, train=True)
    view = train(image, torch.Generator().manual_seed(0))
    assert view.shape == (1, 3, 32, 32)
    assert view.mean().abs() < 1e-4
    fixed = RotationTransform(resize=80, crop=64, size=32, train=False)
    assert torch.equal(fixed(image), fixed(image))
    with pytest.raises(ValueError, match="crop"):
        RotationTransform(resize=32, crop=64)
