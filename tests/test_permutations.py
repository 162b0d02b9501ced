"""Tests for the permutation set Ψ: generation, statistics, cache, files, application."""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np
import pytest
import torch

from ssl_rl import permutations as P
from ssl_rl.permutations import (
    PermutationFileError,
    PermutationSet,
    apply_permutation,
    hamming_stats,
    invert_permutation,
    load_permutations,
    max_hamming_permutations,
    read_permutation_file,
)


def _is_permutation_set(perms: torch.Tensor, n: int) -> bool:
    rows_ok = torch.equal(perms.sort(dim=1).values, torch.arange(n).expand_as(perms))
    return rows_ok and len(torch.unique(perms, dim=0)) == len(perms)


def _distance(a: tuple[int, ...], b: tuple[int, ...], merge_reverse: bool) -> int:
    plain = sum(x != y for x, y in zip(a, b, strict=True))
    if not merge_reverse:
        return plain
    return min(plain, sum(x != y for x, y in zip(a, b[::-1], strict=True)))


def _assert_greedy_choices(perms: torch.Tensor, candidates: list, merge_reverse: bool) -> None:
    """Every row after the first is the first (lexicographic) max-mean unchosen candidate."""
    rows = [tuple(r) for r in perms.tolist()]
    for t in range(1, len(rows)):
        chosen = rows[:t]
        best_score, best = -1.0, None
        for cand in candidates:  # lexicographic order
            if cand in chosen:
                continue
            score = sum(_distance(cand, c, merge_reverse) for c in chosen) / len(chosen)
            if score > best_score:
                best_score, best = score, cand
        assert rows[t] == best, f"step {t}: got {rows[t]}, brute force picks {best}"


# ----------------------------------------------------------------------------- generation


def test_rows_are_distinct_permutations_with_expected_shape_and_dtype():
    perms = max_hamming_permutations(6, 50, seed=3)
    assert perms.dtype == torch.long and perms.shape == (50, 6)
    assert _is_permutation_set(perms, 6)


def test_deterministic_from_seed_and_seeds_differ():
    a = max_hamming_permutations(7, 40, seed=1)
    assert torch.equal(a, max_hamming_permutations(7, 40, seed=1))
    assert not torch.equal(a, max_hamming_permutations(7, 40, seed=2))


@pytest.mark.parametrize("n", [4, 5])
def test_greedy_matches_brute_force_max_mean(n):
    perms = max_hamming_permutations(n, 12, seed=n)
    _assert_greedy_choices(perms, list(itertools.permutations(range(n))), merge_reverse=False)


def test_can_take_every_candidate():
    perms = max_hamming_permutations(4, 24, seed=0)
    assert _is_permutation_set(perms, 4) and len(perms) == math.factorial(4)


def test_jigsaw_set_n9_1000_is_at_least_as_diverse_as_the_public_set():
    perms = max_hamming_permutations(9, 1000, seed=0)
    assert _is_permutation_set(perms, 9)
    minimum, mean = hamming_stats(perms)
    assert minimum >= 2
    assert mean >= 8.0
    # Balanced position counts (111 or 112 of each value per position) bound the mean by
    # 8.008; the greedy set reaches it.
    assert mean == pytest.approx(8.008, abs=1e-3)


def test_pool_path_for_large_n_is_deterministic_and_diverse():
    perms = max_hamming_permutations(10, 60, seed=5, pool_size=3000)
    assert perms.shape == (60, 10) and _is_permutation_set(perms, 10)
    assert torch.equal(perms, max_hamming_permutations(10, 60, seed=5, pool_size=3000))
    assert not torch.equal(perms, max_hamming_permutations(10, 60, seed=6, pool_size=3000))
    assert hamming_stats(perms)[1] > 9.0  # random permutations average n - 1 = 9


def test_pool_with_small_n_is_a_subset_greedy():
    full = max_hamming_permutations(6, 30, seed=0)
    pooled = max_hamming_permutations(6, 30, seed=0, pool_size=200)
    assert _is_permutation_set(pooled, 6) and not torch.equal(full, pooled)
    # a pool as large as all candidates is the exact pass
    assert torch.equal(full, max_hamming_permutations(6, 30, seed=0, pool_size=720))


def test_merge_reverse_never_puts_a_permutation_and_its_reverse_in_two_classes():
    perms = max_hamming_permutations(6, 200, seed=0, merge_reverse=True)
    assert _is_permutation_set(perms, 6)
    assert all(tuple(r) <= tuple(r[::-1]) for r in perms.tolist())  # canonical representatives
    with_reverses = torch.cat([perms, perms.flip(-1)])
    assert len(torch.unique(with_reverses, dim=0)) == 400
    assert hamming_stats(perms, merge_reverse=True)[0] >= 2


def test_merge_reverse_greedy_uses_the_class_distance():
    perms = max_hamming_permutations(5, 10, seed=1, merge_reverse=True)
    canonical = [p for p in itertools.permutations(range(5)) if p < p[::-1]]
    _assert_greedy_choices(perms, canonical, merge_reverse=True)


def test_merge_reverse_pool_path():
    perms = max_hamming_permutations(10, 40, seed=0, pool_size=2000, merge_reverse=True)
    with_reverses = torch.cat([perms, perms.flip(-1)])
    assert _is_permutation_set(with_reverses, 10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_parts": 1, "n_perms": 1}, "n_parts"),
        ({"n_parts": 4, "n_perms": 25}, "n_perms"),
        ({"n_parts": 4, "n_perms": 13, "merge_reverse": True}, "merge_reverse"),
        ({"n_parts": 5, "n_perms": 30, "pool_size": 20}, "pool_size"),
        ({"n_parts": 10, "n_perms": 5, "pool_size": math.factorial(10)}, "pool_size"),
    ],
)
def test_bad_generation_arguments_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        max_hamming_permutations(**kwargs)


# ----------------------------------------------------------------------------- statistics


def test_hamming_stats_against_brute_force_and_chunking():
    perms = torch.stack(
        [torch.randperm(7, generator=torch.Generator().manual_seed(i)) for i in range(30)]
    )
    pairs = list(itertools.combinations(perms.tolist(), 2))
    for merge in (False, True):
        dists = [_distance(tuple(a), tuple(b), merge) for a, b in pairs]
        minimum, mean = hamming_stats(perms, merge_reverse=merge)
        assert minimum == min(dists) and mean == pytest.approx(sum(dists) / len(dists))
        assert hamming_stats(perms, merge_reverse=merge, chunk_elements=50) == (minimum, mean)


def test_hamming_stats_hand_example():
    perms = torch.tensor([[0, 1, 2], [1, 0, 2], [2, 1, 0]])  # distances 2, 2, 3
    assert hamming_stats(perms) == (2, pytest.approx(7 / 3))
    # min over the reversed partner: 2, 0 ([2, 1, 0] reversed is [0, 1, 2]), 2
    assert hamming_stats(perms, merge_reverse=True) == (0, pytest.approx(4 / 3))


# ----------------------------------------------------------------------------- cache


def test_cache_round_trip_and_no_regeneration(tmp_path, monkeypatch):
    first = load_permutations(6, 30, seed=4, cache_dir=tmp_path, merge_reverse=True)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [P.cache_file_name(6, 30, 4, merge_reverse=True)]

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although cached")

    monkeypatch.setattr(P, "max_hamming_permutations", fail)
    second = load_permutations(6, 30, seed=4, cache_dir=tmp_path, merge_reverse=True)
    assert torch.equal(first, second) and second.dtype == torch.long
    with pytest.raises(AssertionError, match="regenerated"):
        load_permutations(6, 30, seed=5, cache_dir=tmp_path, merge_reverse=True)


def test_cache_file_name_encodes_every_parameter():
    names = {
        P.cache_file_name(9, 1000, 0),
        P.cache_file_name(8, 1000, 0),
        P.cache_file_name(9, 100, 0),
        P.cache_file_name(9, 1000, 1),
        P.cache_file_name(9, 1000, 0, merge_reverse=True),
        P.cache_file_name(9, 1000, 0, pool_size=5000),
        P.cache_file_name(9, 1000, 0, pool_size=math.factorial(9)),  # same as exact
    }
    assert len(names) == 6


def test_corrupt_cache_is_regenerated_with_a_warning(tmp_path, caplog):
    path = tmp_path / P.cache_file_name(5, 10, 0)
    path.write_bytes(b"not a numpy file")
    with caplog.at_level(logging.WARNING, logger=P.__name__):
        perms = load_permutations(5, 10, seed=0, cache_dir=tmp_path)
    assert str(path) in caplog.text
    assert torch.equal(perms, max_hamming_permutations(5, 10, seed=0))
    assert torch.equal(read_permutation_file(path), perms)
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


# ----------------------------------------------------------------------------- files


def test_read_npy_and_pt(tmp_path):
    perms = max_hamming_permutations(5, 8, seed=0)
    np.save(tmp_path / "p.npy", perms.numpy().astype(np.int32))
    torch.save(perms.int(), tmp_path / "p.pt")
    for name in ("p.npy", "p.pt"):
        loaded = read_permutation_file(tmp_path / name, n_parts=5)
        assert loaded.dtype == torch.long and torch.equal(loaded, perms)


def test_read_one_based_file_converts_with_warning(tmp_path, caplog):
    perms = max_hamming_permutations(9, 20, seed=0)
    path = tmp_path / "permutations_hamming_max_20.npy"
    np.save(path, (perms + 1).numpy().astype(np.float64))  # like a MATLAB export
    with caplog.at_level(logging.WARNING, logger=P.__name__):
        loaded = read_permutation_file(path)
    assert torch.equal(loaded, perms)
    assert "1-based" in caplog.text and str(path) in caplog.text


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (np.array([[0, 1, 2], [0, 0, 2]]), "rep.npy", "row 1"),
        (np.array([[0, 1, 2], [0, 1, 2]]), "dup.npy", "more than once"),
        (np.array([0, 1, 2]), "flat.npy", "2-D"),
        (np.array([[0.0, 1.5, 2.0]]), "frac.npy", "integer"),
        (np.array([[0, 1, 3]]), "range.npy", "not a permutation"),
        (np.array([[0, 1, 2, 3]]), "parts.npy", "3 parts"),
        (b"garbage", "corrupt.npy", "could not be read"),
        (b"garbage", "perms.txt", "unsupported extension"),
        ({"perms": torch.zeros(2, 3)}, "dict.pt", "expected a saved tensor"),
    ],
)
def test_bad_file_raises_value_error_naming_the_file(tmp_path, content, name, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, np.ndarray):
        np.save(path, content)
    else:
        torch.save(content, path)
    with pytest.raises(ValueError, match=message) as info:
        read_permutation_file(path, n_parts=3)
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(PermutationFileError, match="does not exist") as info:
        read_permutation_file(tmp_path / "nope.npy")
    assert "nope.npy" in str(info.value)


# ----------------------------------------------------------------------------- PermutationSet


def test_permutation_set_from_config_generates_caches_and_checkpoints(tmp_path):
    ps = PermutationSet.from_config(n_parts=5, n_perms=12, seed=2, cache_dir=tmp_path)
    assert (ps.num_classes, ps.num_parts) == (12, 5)
    assert torch.equal(ps.perms, max_hamming_permutations(5, 12, seed=2))
    assert "perms" in ps.state_dict()
    other = PermutationSet(max_hamming_permutations(5, 12, seed=9))
    other.load_state_dict(ps.state_dict())
    assert torch.equal(other.perms, ps.perms)


def test_permutation_set_from_file(tmp_path):
    perms = max_hamming_permutations(4, 6, seed=0)
    np.save(tmp_path / "p.npy", perms.numpy())
    ps = PermutationSet.from_config(n_parts=4, file=tmp_path / "p.npy")
    assert torch.equal(ps.perms, perms)
    with pytest.raises(ValueError, match="holds 6 permutations"):
        PermutationSet.from_config(n_parts=4, n_perms=7, file=tmp_path / "p.npy")


def test_orders_without_merge_are_the_rows():
    ps = PermutationSet(max_hamming_permutations(6, 10, seed=0))
    idx = torch.tensor([3, 0, 3, 9])
    assert torch.equal(ps.orders(idx), ps.perms[idx])


def test_orders_with_merge_reverse_flip_about_half_reproducibly():
    ps = PermutationSet(max_hamming_permutations(6, 10, seed=0, merge_reverse=True), True)
    idx = torch.arange(10).repeat(200)
    orders = ps.orders(idx, torch.Generator().manual_seed(0))
    same = (orders == ps.perms[idx]).all(1)
    flipped = (orders == ps.perms[idx].flip(-1)).all(1)
    assert bool((same ^ flipped).all())
    assert 0.4 < flipped.float().mean().item() < 0.6
    again = ps.orders(idx, torch.Generator().manual_seed(0))
    assert torch.equal(orders, again)


def test_permutation_set_rejects_bad_sets():
    with pytest.raises(ValueError, match="permutation of"):
        PermutationSet(torch.tensor([[0, 1, 1]]))
    with pytest.raises(ValueError, match="distinct"):
        PermutationSet(torch.tensor([[0, 1, 2], [0, 1, 2]]))
    with pytest.raises(ValueError, match="reverse"):
        PermutationSet(torch.tensor([[0, 1, 2], [2, 1, 0]]), merge_reverse=True)


# ----------------------------------------------------------------------------- application


def test_apply_permutation_hand_example():
    x = torch.tensor([[10, 11, 12], [20, 21, 22]])[..., None].expand(2, 3, 2)  # trailing dims
    orders = torch.tensor([[2, 0, 1], [0, 2, 1]])
    out = apply_permutation(x, orders)
    assert out[..., 0].tolist() == [[12, 10, 11], [20, 22, 21]]
    assert out.shape == x.shape


def test_apply_then_inverse_is_identity():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(16, 9, 3, 4, 4, generator=gen)
    orders = torch.stack([torch.randperm(9, generator=gen) for _ in range(16)])
    inverse = invert_permutation(orders)
    assert torch.equal(apply_permutation(apply_permutation(x, orders), inverse), x)
    assert torch.equal(apply_permutation(apply_permutation(x, inverse), orders), x)


def test_apply_permutation_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="orders"):
        apply_permutation(torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long))
