"""The permutation set Ψ of an ordering task: generation, caching, loading and application.

Generation follows Noroozi & Favaro's Algorithm 1 (SPEC §1): start from one random
permutation, then repeatedly add the candidate with the largest mean Hamming distance to
the ones already chosen. Ties go to the lexicographically first candidate, as in their
public script (``argmax`` over the ``itertools.permutations`` order).
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

#: Up to this many candidates (9! for a 3×3 jigsaw) the greedy pass runs over all of them.
EXACT_MAX_CANDIDATES = math.factorial(9)
#: Candidate pool size when there are more candidates than ``EXACT_MAX_CANDIDATES``.
DEFAULT_POOL_SIZE = EXACT_MAX_CANDIDATES
#: Bumped whenever the generator's output changes, so stale cache files are never reused.
GENERATOR_VERSION = 1

_TAKEN = np.int32(2**30)  # marks chosen candidates in the running match count


class PermutationFileError(ValueError):
    """A permutation file is missing or malformed; the message names the file and the fix."""


# ----------------------------------------------------------------------------- generation


def max_hamming_permutations(
    n_parts: int,
    n_perms: int,
    seed: int = 0,
    pool_size: int | None = None,
    merge_reverse: bool = False,
) -> torch.Tensor:
    """Greedy maximal-mean-Hamming permutation set, long tensor (n_perms, n_parts), 0-based.

    Exact over all n! candidates when that is at most ``EXACT_MAX_CANDIDATES`` and no
    ``pool_size`` is given; otherwise over a seeded random pool of distinct candidates.
    With ``merge_reverse`` a candidate is a class {ψ, reversed ψ}, represented by its
    lexicographically smaller member, and the distance between two classes is the minimum
    Hamming distance over their members.
    """
    if n_parts < 2:
        raise ValueError(f"n_parts must be at least 2, got {n_parts}")
    n_candidates = math.factorial(n_parts) // (2 if merge_reverse else 1)
    if not 1 <= n_perms <= n_candidates:
        raise ValueError(
            f"n_perms must be in 1..{n_candidates} for n_parts={n_parts}"
            f"{' with merge_reverse' if merge_reverse else ''}, got {n_perms}"
        )
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    pool = _resolve_pool_size(n_parts, n_candidates, pool_size)
    if pool is None or n_candidates <= EXACT_MAX_CANDIDATES:
        candidates = _all_permutations(n_parts)
        if merge_reverse:
            candidates = candidates[_is_canonical(candidates)]
        if pool is not None:
            candidates = candidates[np.sort(rng.choice(len(candidates), pool, replace=False))]
    else:
        candidates = _random_pool(n_parts, pool, rng, merge_reverse)
    if n_perms > len(candidates):
        raise ValueError(f"pool_size={len(candidates)} is smaller than n_perms={n_perms}")

    start = int(rng.integers(len(candidates)))
    chosen = _greedy_max_mean(np.ascontiguousarray(candidates.T), n_perms, start, merge_reverse)
    logger.info(
        "generated %d permutations of %d parts from %d candidates in %.2f s",
        n_perms,
        n_parts,
        len(candidates),
        time.perf_counter() - t0,
    )
    return torch.from_numpy(candidates[chosen].astype(np.int64))


def _resolve_pool_size(n_parts: int, n_candidates: int, pool_size: int | None) -> int | None:
    """None for the exact pass, otherwise the number of pooled candidates."""
    if pool_size is None:
        return None if n_candidates <= EXACT_MAX_CANDIDATES else DEFAULT_POOL_SIZE
    if pool_size < 1:
        raise ValueError(f"pool_size must be positive, got {pool_size}")
    if pool_size >= n_candidates:
        if n_candidates <= EXACT_MAX_CANDIDATES:
            return None
        raise ValueError(
            f"pool_size={pool_size} is not smaller than the {n_candidates} candidates for "
            f"n_parts={n_parts}; use a pool of at most {EXACT_MAX_CANDIDATES}"
        )
    return pool_size


def _value_dtype(n_parts: int) -> type[np.signedinteger]:
    return np.int8 if n_parts <= 127 else np.int16


def _all_permutations(n_parts: int) -> np.ndarray:
    """All n! permutations in lexicographic order, shape (n!, n)."""
    count = math.factorial(n_parts)
    flat = np.fromiter(
        itertools.chain.from_iterable(itertools.permutations(range(n_parts))),
        dtype=_value_dtype(n_parts),
        count=count * n_parts,
    )
    return flat.reshape(count, n_parts)


def _is_canonical(perms: np.ndarray) -> np.ndarray:
    """Rows that are lexicographically smaller than their reverse (never equal for n >= 2)."""
    reverse = perms[:, ::-1]
    first_diff = np.argmax(perms != reverse, axis=1)
    rows = np.arange(len(perms))
    canonical: np.ndarray = perms[rows, first_diff] < reverse[rows, first_diff]
    return canonical


def _canonicalise(perms: np.ndarray) -> np.ndarray:
    """Replace every row by the lexicographically smaller of itself and its reverse."""
    return np.where(_is_canonical(perms)[:, None], perms, perms[:, ::-1])


def _random_pool(
    n_parts: int, pool_size: int, rng: np.random.Generator, merge_reverse: bool
) -> np.ndarray:
    """``pool_size`` distinct random (canonical) permutations, in lexicographic order."""
    pool = np.empty((0, n_parts), dtype=_value_dtype(n_parts))
    while len(pool) < pool_size:
        chunk = min(1 << 16, 2 * (pool_size - len(pool)) + 64)
        draw = np.argsort(rng.random((chunk, n_parts)), axis=1).astype(pool.dtype)
        if merge_reverse:
            draw = _canonicalise(draw)
        stacked = np.concatenate([pool, draw])
        _, first = np.unique(_row_keys(stacked), axis=0, return_index=True)
        pool = stacked[np.sort(first)][:pool_size]  # keep draw order: the first ones win
    return pool[np.lexsort(pool.T[::-1])]


def _row_keys(perms: np.ndarray) -> np.ndarray:
    """Order-preserving int64 key per row (base-n digits) where it fits, else the rows."""
    n_parts = perms.shape[1]
    if n_parts**n_parts > np.iinfo(np.int64).max:
        return perms
    weights = n_parts ** np.arange(n_parts - 1, -1, -1, dtype=np.int64)
    keys: np.ndarray = perms.astype(np.int64) @ weights
    return keys


def _greedy_max_mean(
    candidates_t: np.ndarray, n_perms: int, start: int, merge_reverse: bool
) -> np.ndarray:
    """Indices of the greedy choice over ``candidates_t`` (n, N), starting at ``start``.

    Maximising the summed distance to the chosen set is minimising the summed number of
    matching positions, which is kept as a running count updated once per chosen row.
    """
    n_parts, n_candidates = candidates_t.shape
    total_matches = np.zeros(n_candidates, dtype=np.int32)
    match_dtype: type[np.integer] = np.uint8 if n_parts <= 255 else np.int32
    matches: np.ndarray = np.empty(n_candidates, dtype=match_dtype)
    reverse_matches = np.empty_like(matches)
    equal = np.empty(n_candidates, dtype=bool)
    chosen = np.empty(n_perms, dtype=np.int64)
    chosen[0] = start
    total_matches[start] = _TAKEN
    for step in range(1, n_perms):
        latest = candidates_t[:, chosen[step - 1]]
        _count_matches(candidates_t, latest, matches, equal)
        if merge_reverse:
            _count_matches(candidates_t, latest[::-1], reverse_matches, equal)
            np.maximum(matches, reverse_matches, out=matches)
        total_matches += matches
        best = int(np.argmin(total_matches))  # first minimum: lexicographic tie-break
        chosen[step] = best
        total_matches[best] = _TAKEN
    return chosen


def _count_matches(
    candidates_t: np.ndarray, perm: np.ndarray, out: np.ndarray, equal: np.ndarray
) -> None:
    """out[c] = number of positions k where candidate c equals ``perm`` (column-major scan)."""
    out[:] = 0
    for position, value in enumerate(perm):
        np.equal(candidates_t[position], value, out=equal)
        out += equal


# ----------------------------------------------------------------------------- statistics


def hamming_stats(
    perms: torch.Tensor, merge_reverse: bool = False, chunk_elements: int = 1 << 24
) -> tuple[int, float]:
    """Minimum and mean pairwise Hamming distance over all pairs i < j.

    With ``merge_reverse`` the distance between two rows is the minimum over ψ_j and its
    reverse. Rows are processed in chunks of about ``chunk_elements`` compared entries.
    """
    perms = torch.as_tensor(perms)
    if perms.ndim != 2 or perms.shape[0] < 2:
        raise ValueError(f"need a (P >= 2, n) tensor of permutations, got {tuple(perms.shape)}")
    n_rows, n_parts = perms.shape
    variants = [perms] + ([perms.flip(-1)] if merge_reverse else [])
    rows_per_chunk = max(1, chunk_elements // (n_rows * n_parts))
    minimum, total = n_parts + 1, 0
    for lo in range(0, n_rows, rows_per_chunk):
        block = perms[lo : lo + rows_per_chunk, None, :]
        dist = torch.stack([(block != v[None]).sum(-1) for v in variants]).amin(0)
        upper = torch.arange(lo, lo + len(block), device=perms.device)[:, None] < torch.arange(
            n_rows, device=perms.device
        )
        pairs = dist[upper]
        if len(pairs):
            minimum = min(minimum, int(pairs.min()))
            total += int(pairs.sum())
    return minimum, total / (n_rows * (n_rows - 1) / 2)


# ----------------------------------------------------------------------------- files & cache


def cache_file_name(
    n_parts: int,
    n_perms: int,
    seed: int,
    merge_reverse: bool = False,
    pool_size: int | None = None,
) -> str:
    """File name that encodes every parameter of the generated set (and the generator)."""
    n_candidates = math.factorial(n_parts) // (2 if merge_reverse else 1)
    pool = _resolve_pool_size(n_parts, n_candidates, pool_size)
    source = "exact" if pool is None else f"pool{pool}"
    reverse = "_revmerged" if merge_reverse else ""
    return f"perms_n{n_parts}_k{n_perms}_seed{seed}_{source}{reverse}_v{GENERATOR_VERSION}.npy"


def load_permutations(
    n_parts: int,
    n_perms: int,
    seed: int,
    cache_dir: str | os.PathLike[str],
    merge_reverse: bool = False,
    pool_size: int | None = None,
) -> torch.Tensor:
    """The generated set, from ``cache_dir`` if present, else generated and cached there."""
    path = Path(cache_dir) / cache_file_name(n_parts, n_perms, seed, merge_reverse, pool_size)
    if path.is_file():
        try:
            perms = read_permutation_file(path, n_parts)
            if perms.shape == (n_perms, n_parts):
                return perms
            logger.warning("cache %s has shape %s; regenerating", path, tuple(perms.shape))
        except PermutationFileError as err:
            logger.warning("unusable cache file, regenerating: %s", err)
    perms = max_hamming_permutations(n_parts, n_perms, seed, pool_size, merge_reverse)
    _atomic_save_npy(path, perms.numpy().astype(_value_dtype(n_parts)))
    return perms


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Write to a temporary file in the same folder, then rename: readers never see halves."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.save(handle, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_permutation_file(path: str | os.PathLike[str], n_parts: int | None = None) -> torch.Tensor:
    """Load a user-provided set (.npy or .pt), validated, as a 0-based long tensor (P, n).

    1-based files (values 1..n, e.g. the JigsawPuzzlePytorch sets) are converted with a
    warning. Anything else that is not one distinct permutation per row raises
    ``PermutationFileError`` (a ``ValueError``) naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise PermutationFileError(f"permutation file {path} does not exist")
    array = _read_array(path)
    if array.ndim != 2 or array.shape[0] < 1 or array.shape[1] < 2:
        raise PermutationFileError(
            f"{path}: expected a 2-D array (n_perms, n_parts) with n_parts >= 2, "
            f"got shape {array.shape}"
        )
    if n_parts is not None and array.shape[1] != n_parts:
        raise PermutationFileError(
            f"{path}: rows have {array.shape[1]} entries but the task has {n_parts} parts"
        )
    array = _as_integers(path, array)
    n = array.shape[1]
    if array.min() == 1 and array.max() == n:
        logger.warning(
            "%s holds 1-based permutations (values 1..%d); converting to 0-based", path, n
        )
        array = array - 1
    bad = np.flatnonzero((np.sort(array, axis=1) != np.arange(n)).any(axis=1))
    if len(bad):
        raise PermutationFileError(
            f"{path}: row {bad[0]} {array[bad[0]].tolist()} is not a permutation of 0..{n - 1} "
            f"(or 1..{n}); {len(bad)} bad row(s) in total"
        )
    _, first, counts = np.unique(array, axis=0, return_index=True, return_counts=True)
    if (counts > 1).any():
        row = int(first[np.argmax(counts > 1)])
        raise PermutationFileError(
            f"{path}: permutation {array[row].tolist()} (row {row}) appears more than once; "
            "every class needs a distinct permutation"
        )
    return torch.from_numpy(array)


def _read_array(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.asarray(np.load(path, allow_pickle=False))
        if suffix == ".pt":
            loaded = torch.load(path, map_location="cpu", weights_only=True)
            if not isinstance(loaded, torch.Tensor):
                raise PermutationFileError(
                    f"{path}: expected a saved tensor, found {type(loaded).__name__}"
                )
            return loaded.numpy()
    except PermutationFileError:
        raise
    except Exception as err:  # numpy/torch raise many types for a corrupt file
        raise PermutationFileError(f"{path}: could not be read ({err})") from err
    raise PermutationFileError(f"{path}: unsupported extension {suffix!r}; use .npy or .pt")


def _as_integers(path: Path, array: np.ndarray) -> np.ndarray:
    """int64 copy; float arrays (e.g. exported from MATLAB) only if every value is integral."""
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    is_float = np.issubdtype(array.dtype, np.floating)
    if is_float and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        return array.astype(np.int64)
    raise PermutationFileError(f"{path}: expected integer permutation indices, got {array.dtype}")


# ----------------------------------------------------------------------------- use in training


class PermutationSet(torch.nn.Module):
    """One task's Ψ: class index → part order, hiding reverse merging from the caller.

    ``perms`` is a buffer, so it follows ``.to(device)`` and is saved in checkpoints.
    """

    perms: torch.Tensor

    def __init__(self, perms: torch.Tensor, merge_reverse: bool = False) -> None:
        super().__init__()
        perms = torch.as_tensor(perms).long()
        _check_set(perms, merge_reverse)
        self.merge_reverse = merge_reverse
        self.register_buffer("perms", perms.clone())

    @classmethod
    def from_config(
        cls,
        n_parts: int,
        n_perms: int | None = None,
        seed: int = 0,
        cache_dir: str | os.PathLike[str] = "data_cache/permutations",
        merge_reverse: bool = False,
        pool_size: int | None = None,
        file: str | os.PathLike[str] | None = None,
    ) -> PermutationSet:
        """Load ``file`` if given, otherwise generate (cached in ``cache_dir``)."""
        if file is not None:
            perms = read_permutation_file(file, n_parts)
            if n_perms is not None and len(perms) != n_perms:
                raise PermutationFileError(
                    f"{file}: holds {len(perms)} permutations but n_perms={n_perms}; "
                    "set n_perms to match or leave it unset"
                )
        else:
            if n_perms is None:
                raise ValueError("n_perms is required when no permutation file is given")
            perms = load_permutations(n_parts, n_perms, seed, cache_dir, merge_reverse, pool_size)
        return cls(perms, merge_reverse)

    @property
    def num_classes(self) -> int:
        return self.perms.shape[0]

    @property
    def num_parts(self) -> int:
        return self.perms.shape[1]

    def orders(self, idx: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Part orders (B, n) on ``idx``'s device for class indices ``idx`` (B,).

        With ``merge_reverse`` each sample independently gets ψ or reversed ψ (p = 1/2).
        """
        perms = self.perms.to(idx.device)
        orders = perms[idx]
        if not self.merge_reverse:
            return orders
        device = generator.device if generator is not None else idx.device
        flip = torch.randint(0, 2, idx.shape, generator=generator, device=device).bool()
        return torch.where(flip.to(idx.device)[..., None], orders.flip(-1), orders)

    def transform(
        self, parts: torch.Tensor, idx: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``parts`` (B, n, ...) reordered by the orders of classes ``idx`` (B,)."""
        return apply_permutation(parts, self.orders(idx, generator=generator))

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, num_parts={self.num_parts}, "
            f"merge_reverse={self.merge_reverse}"
        )


def _check_set(perms: torch.Tensor, merge_reverse: bool) -> None:
    if perms.ndim != 2 or perms.shape[0] < 1 or perms.shape[1] < 2:
        raise ValueError(f"perms must have shape (P >= 1, n >= 2), got {tuple(perms.shape)}")
    n = perms.shape[1]
    if not torch.equal(
        perms.sort(dim=1).values, torch.arange(n, device=perms.device).expand_as(perms)
    ):
        raise ValueError(f"every row of perms must be a permutation of 0..{n - 1}")
    variants = torch.cat([perms, perms.flip(-1)]) if merge_reverse else perms
    if len(torch.unique(variants, dim=0)) != len(variants):
        what = "a permutation or its reverse" if merge_reverse else "a permutation"
        raise ValueError(f"perms repeats {what}; every class needs a distinct order")


# ----------------------------------------------------------------------------- application


def apply_permutation(x: torch.Tensor, orders: torch.Tensor) -> torch.Tensor:
    """Shuffle parts: ``out[b, k] = x[b, orders[b, k]]`` for x (B, n, ...), orders (B, n).

    Position k of the shuffled puzzle shows part ψ[k].
    """
    if orders.ndim != 2 or x.shape[:2] != orders.shape:
        raise ValueError(
            f"orders {tuple(orders.shape)} must be (B, n) matching x's leading dims "
            f"{tuple(x.shape[:2])}"
        )
    orders = orders.to(x.device)
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return x[rows, orders]


def invert_permutation(orders: torch.Tensor) -> torch.Tensor:
    """Inverse orders: applying ``orders`` and then the result restores the original."""
    return torch.argsort(orders, dim=-1)
