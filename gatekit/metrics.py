"""Checkpoint diagnostics: pure functions of host arrays, computed in float64.

Nothing here touches disk or JAX. Shapes are written ``[n, d]`` (n samples, d features).
Definitions follow the papers they come from:

* effective rank: RankMe (Garrido et al. 2023): p_k = s_k / sum(s) + eps, exp(-sum p log p),
  on the *uncentered* embedding matrix;
* alignment / uniformity: Wang & Isola 2020, on L2-normalized features (t = 2);
* linear CKA: Kornblith et al. 2019, feature-space form after column centering; the debiased
  variant uses the unbiased HSIC estimator of Song et al. 2012.

Pairwise quantities (uniformity, InfoNCE, contrastive accuracy) run in row blocks, so memory
is O(block * n), never O(n^2).
"""

from __future__ import annotations

import math

import numpy as np

from gatekit.errors import GatekitError
from gatekit.nettypes import ENERGIES

DEFAULT_BLOCK = 2048
MAX_BLOCK_ELEMENTS = 2**20  # 8 MiB of float64 per [rows, n] block (cache-friendly; measured)
RANK_EPS = 1e-7  # RankMe's epsilon added to the normalized singular values
UNIFORMITY_T = 2.0  # Wang & Isola's t in uniformity


def _as2d(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise GatekitError(f"{name} must be a non-empty [n, d] array, got shape {x.shape}")
    return x


def _same_rows(x: np.ndarray, y: np.ndarray, names: str) -> None:
    if x.shape[0] != y.shape[0]:
        raise GatekitError(f"{names}: inconsistent numbers of samples {x.shape[0]} and {y.shape[0]}")


def l2_normalize(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows scaled to unit L2 norm. [n, d] -> [n, d]."""
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), eps)


# --------------------------------------------------------------------------------------------
# Policy statistics
# --------------------------------------------------------------------------------------------


def action_magnitude(mu) -> float:
    """Mean over samples and action dims of |tanh(mu)|: the gate statistic. mu: [n, a]."""
    mu = _as2d(mu, "mu")
    return float(np.mean(np.abs(np.tanh(mu))))


def log_std_mean(log_std) -> float:
    """Mean of the Gaussian log standard deviation. log_std: [n, a]."""
    return float(np.mean(_as2d(log_std, "log_std")))


def gaussian_entropy(log_std) -> float:
    """Entropy of the (pre-tanh) diagonal Gaussian, sum_k (log_std_k + 0.5 log(2 pi e)), averaged."""
    log_std = _as2d(log_std, "log_std")
    return float(np.mean(np.sum(log_std + 0.5 * math.log(2 * math.pi * math.e), axis=-1)))


# --------------------------------------------------------------------------------------------
# Representation geometry
# --------------------------------------------------------------------------------------------


def effective_rank(z, eps: float = RANK_EPS) -> float:
    """RankMe effective rank of an embedding matrix z: [n, d], in [1, min(n, d)] (+eps slack).

    Uses singular values of the uncentered z, computed from the d x d Gram matrix so that the
    cost is O(n d^2) and memory O(d^2) for any n. Scale invariant.
    """
    z = _as2d(z, "z")
    if z.shape[0] < z.shape[1]:
        s = np.linalg.svd(z, compute_uv=False)
    else:
        eig = np.linalg.eigvalsh(z.T @ z)
        s = np.sqrt(np.clip(eig, 0.0, None))
    total = s.sum()
    if total <= 0:
        raise GatekitError("effective_rank: all embeddings are zero")
    p = s / total + eps
    return float(np.exp(-np.sum(p * np.log(p))))


def alignment(x, y, *, normalize: bool = True, alpha: float = 2.0) -> float:
    """Mean ||x_i - y_i||^alpha over positive pairs (rows). normalize=False gives the raw
    critic-scale distance (``alignment_raw``)."""
    x, y = _as2d(x, "x"), _as2d(y, "y")
    _same_rows(x, y, "alignment(x, y)")
    if normalize:
        x, y = l2_normalize(x), l2_normalize(y)
    return float(np.mean(np.linalg.norm(x - y, axis=-1) ** alpha))


def uniformity(x, *, t: float = UNIFORMITY_T, block: int = DEFAULT_BLOCK) -> float:
    """log mean_{i<j} exp(-t ||x_i - x_j||^2) on L2-normalized rows of x: [n, d], n >= 2.

    Blockwise log-sum-exp, O(block * n) memory; uses ||x_i - x_j||^2 = 2 - 2 x_i.x_j.
    """
    x = l2_normalize(_as2d(x, "x"))
    n = x.shape[0]
    if n < 2:
        raise GatekitError("uniformity needs at least 2 samples")
    block = _rows_per_block(n, block)
    total = 0.0
    for start in range(0, n - 1, block):
        # -t ||x_i - x_j||^2 = 2t (x_i.x_j - 1) lies in [-4t, 0]: exp needs no max shift.
        # Rows [start, start+b) against columns [start, n): the leading b x b square is symmetric,
        # so its pairs j > i sum to (square sum - diagonal) / 2; later columns all have j > i.
        e = x[start : start + block] @ x[start:].T
        e -= 1.0
        e *= 2.0 * t
        np.exp(e, out=e)
        b = e.shape[0]
        square = e[:, :b]
        total += float(e[:, b:].sum()) + (float(square.sum()) - float(np.trace(square))) / 2.0
    if total <= 0.0:
        raise GatekitError(f"uniformity underflowed (t={t} too large)")
    return float(math.log(total) - math.log(n * (n - 1) / 2))


def _logsumexp_inplace(a: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """log(sum(exp(a))) over ``axis`` (None: all), destroying ``a``; one exp pass, no copies."""
    m = a.max(axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    a -= m
    np.exp(a, out=a)
    out = np.log(a.sum(axis=axis, keepdims=True)) + m
    return float(out.ravel()[0]) if axis is None else out.squeeze(axis)


def _rows_per_block(n: int, block: int) -> int:
    """Rows per block so that a [rows, n] float64 block stays near 8 MiB (and <= block)."""
    return max(1, min(block, MAX_BLOCK_ELEMENTS // max(n, 1)))


def pairwise_energy(x: np.ndarray, y: np.ndarray, kind: str = "neg_l2_sq") -> np.ndarray:
    """out[i, j] = f(x_i, y_j) for the critic energies; float64 Gram-trick form. [B, d], [M, d] -> [B, M]."""
    dot = x @ y.T
    if kind == "dot":
        return dot
    sq = np.maximum((x * x).sum(-1)[:, None] + (y * y).sum(-1)[None, :] - 2.0 * dot, 0.0)
    if kind == "neg_l2_sq":
        return -sq
    if kind == "neg_l2":
        return -np.sqrt(sq + 1e-6)
    raise GatekitError(f"unknown energy {kind!r}; expected one of {ENERGIES}")


def diagonal_energy(x: np.ndarray, y: np.ndarray, kind: str = "neg_l2_sq") -> np.ndarray:
    """f(x_i, y_i) for each row. [n, d], [n, d] -> [n]."""
    x, y = _as2d(x, "x"), _as2d(y, "y")
    _same_rows(x, y, "diagonal_energy(x, y)")
    if kind == "dot":
        return np.sum(x * y, axis=-1)
    sq = np.sum((x - y) ** 2, axis=-1)
    if kind == "neg_l2_sq":
        return -sq
    if kind == "neg_l2":
        return -np.sqrt(sq + 1e-6)
    raise GatekitError(f"unknown energy {kind!r}; expected one of {ENERGIES}")


def critic_values(sa_repr, goal_repr, kind: str = "neg_l2_sq") -> np.ndarray:
    """Critic values for q_corr: every positive pair f(x_i, y_i) and one negative pair
    f(x_i, y_{i+1 mod n}) per row, so the values span both sides of the contrast. -> [2n]."""
    return np.concatenate(
        [diagonal_energy(sa_repr, goal_repr, kind), diagonal_energy(sa_repr, np.roll(goal_repr, -1, axis=0), kind)]
    )


def _contrastive_rows(x, y, kind, tau, block):
    """Yields (row indices, block [b, n]) with block_ij = f(x_i, y_j) / tau - c_i for a per-row
    constant c_i. Softmax over j and argmax over j are unchanged by c_i, which lets the squared
    L2 energy drop its ||x_i||^2 term: f_ij - c_i = 2 x_i.y_j - ||y_j||^2 (one matmul per block)."""
    x, y = _as2d(x, "sa_repr"), _as2d(y, "goal_repr")
    _same_rows(x, y, "(sa_repr, goal_repr)")
    if tau <= 0:
        raise GatekitError(f"temperature must be positive, got {tau}")
    if kind not in ENERGIES:
        raise GatekitError(f"unknown energy {kind!r}; expected one of {ENERGIES}")
    y2, y_sq = 2.0 * y, np.einsum("ij,ij->i", y, y)
    block = _rows_per_block(x.shape[0], block)
    for start in range(0, x.shape[0], block):
        idx = np.arange(start, min(start + block, x.shape[0]))
        if kind == "neg_l2":
            blk = pairwise_energy(x[idx], y, kind)
        else:
            blk = x[idx] @ (y2 if kind == "neg_l2_sq" else y).T
            if kind == "neg_l2_sq":
                blk -= y_sq[None, :]
        blk /= tau
        yield idx, blk


def infonce(x, y, *, energy: str = "neg_l2_sq", tau: float = 1.0, block: int = DEFAULT_BLOCK) -> float:
    """Forward InfoNCE over the whole probe: mean_i [logsumexp_j l_ij - l_ii], l = f / tau.

    Positives are the diagonal (x_i with its own future goal y_i). Lower is better; a random
    critic gives about log(n).
    """
    total = 0.0
    n = 0
    for idx, logits in _contrastive_rows(x, y, energy, tau, block):
        pos = logits[np.arange(len(idx)), idx].copy()
        total += float(np.sum(_logsumexp_inplace(logits, axis=1) - pos))
        n += len(idx)
    return total / n


def contrastive_accuracy(x, y, *, energy: str = "neg_l2_sq", block: int = DEFAULT_BLOCK) -> float:
    """Fraction of rows i whose positive y_i has the highest critic value among all y_j."""
    # -sqrt(d + eps) is monotone in -d: neg_l2 ranks like neg_l2_sq, without the sqrt pass
    kind = "neg_l2_sq" if energy == "neg_l2" else energy
    hits = 0
    n = 0
    for idx, logits in _contrastive_rows(x, y, kind, 1.0, block):
        hits += int(np.sum(np.argmax(logits, axis=1) == idx))
        n += len(idx)
    return hits / n


def linear_cka(x, y, *, debiased: bool = False) -> float:
    """Linear CKA between x: [n, d1] and y: [n, d2] (same rows), feature-space form.

    CKA = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F) after column centering: O(n d^2) time and
    O(d^2) memory. ``debiased=True`` replaces each HSIC with its unbiased U-statistic (needs
    n > 3), which removes the upward bias of CKA for small n / large d.
    """
    x, y = _as2d(x, "x"), _as2d(y, "y")
    _same_rows(x, y, "linear_cka(x, y)")
    n = x.shape[0]
    if debiased and n < 4:
        raise GatekitError(f"debiased CKA needs at least 4 samples, got {n}")
    x = x - x.mean(0, keepdims=True)
    y = y - y.mean(0, keepdims=True)
    xy = np.linalg.norm(y.T @ x) ** 2
    xx = np.linalg.norm(x.T @ x) ** 2
    yy = np.linalg.norm(y.T @ y) ** 2
    if debiased:
        rx, ry = np.einsum("ij,ij->i", x, x), np.einsum("ij,ij->i", y, y)
        nx, ny = rx.sum(), ry.sum()

        def fix(dot, ra, rb, na, nb):
            return dot - n / (n - 2.0) * ra.dot(rb) + na * nb / ((n - 1.0) * (n - 2.0))

        xy, xx, yy = fix(xy, rx, ry, nx, ny), fix(xx, rx, rx, nx, nx), fix(yy, ry, ry, ny, ny)
    denom = math.sqrt(max(xx, 0.0)) * math.sqrt(max(yy, 0.0))
    if denom <= 0:
        raise GatekitError("linear_cka: a representation is constant across samples")
    return float(xy / denom)


def rankdata(x) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties sharing their average rank (``scipy.stats.rankdata``'s
    default, without importing scipy.stats)."""
    x = np.asarray(x).ravel()
    order = np.argsort(x, kind="mergesort")
    inverse = np.empty(x.size, np.intp)
    inverse[order] = np.arange(x.size)
    xs = x[order]
    starts = np.r_[True, xs[1:] != xs[:-1]]
    dense = np.cumsum(starts)[inverse]
    bounds = np.r_[np.nonzero(starts)[0], x.size]
    return 0.5 * (bounds[dense] + bounds[dense - 1] + 1)


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties) of two 1-D arrays of equal length."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape or a.size < 2:
        raise GatekitError(f"spearman: need two equal-length arrays of >= 2 values, got {a.size} and {b.size}")
    ra, rb = rankdata(a), rankdata(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float(ra @ ra) * float(rb @ rb))
    if denom == 0:
        raise GatekitError("spearman: an input is constant")
    return float(ra @ rb / denom)


# --------------------------------------------------------------------------------------------
# Groups of statistics (the registry that names them is gatekit.statistics)
# --------------------------------------------------------------------------------------------


def action_distances(mu) -> np.ndarray:
    """[C, C]: between C policies' means ``mu`` [C, P, A] on one probe of P rows, the mean over the
    probe of ||tanh(mu_i) - tanh(mu_j)|| (L2 over action dimensions): how far apart two
    checkpoints act (the GP race's kernel, :class:`gatekit.racing.GPRace`).

    >>> action_distances(np.zeros((2, 3, 1))).tolist()
    [[0.0, 0.0], [0.0, 0.0]]
    """
    a = np.tanh(np.asarray(mu, dtype=np.float64))
    if a.ndim != 3:
        raise GatekitError(f"action_distances: expected [checkpoints, rows, action dims], got shape {a.shape}")
    return np.stack([np.linalg.norm(a - a[i][None], axis=-1).mean(axis=-1) for i in range(len(a))])


def policy_metrics(mu, log_std) -> dict[str, float]:
    """action_magnitude, log_std_mean, entropy of a policy's outputs on a sample."""
    return {
        "action_magnitude": action_magnitude(mu),
        "log_std_mean": log_std_mean(log_std),
        "entropy": gaussian_entropy(log_std),
    }


def representation_metrics(
    sa_repr,
    goal_repr,
    *,
    energy: str = "neg_l2_sq",
    tau: float = 1.0,
    reference: tuple[np.ndarray, np.ndarray] | None = None,
    block: int = DEFAULT_BLOCK,
) -> dict[str, float]:
    """Probe metrics of (phi(s, a), psi(g+)) pairs; CKA / q_corr against ``reference``
    (its (sa_repr, goal_repr) on the same probe rows) when given."""
    phi, psi = _as2d(sa_repr, "sa_repr"), _as2d(goal_repr, "goal_repr")
    out = {
        "sa_rank": effective_rank(phi),
        "goal_rank": effective_rank(psi),
        "alignment": alignment(phi, psi),
        "alignment_raw": alignment(phi, psi, normalize=False),
        "uniformity_sa": uniformity(phi, block=block),
        "uniformity_goal": uniformity(psi, block=block),
        "contrastive_acc": contrastive_accuracy(phi, psi, energy=energy, block=block),
        "infonce": infonce(phi, psi, energy=energy, tau=tau, block=block),
    }
    if reference is not None:
        out.update(similarity_metrics(phi, psi, reference, energy=energy))
    return out


def similarity_metrics(
    sa_repr, goal_repr, other: tuple[np.ndarray, np.ndarray], *, energy: str = "neg_l2_sq", suffix: str = "",
    debiased: bool = True,
) -> dict[str, float]:
    """CKA (sa, goal) and q_corr of these representations against ``other``'s on the same rows.

    ``suffix=""`` against the final checkpoint (retrospective: cka_sa, cka_goal, q_corr);
    ``suffix="_prev"`` against the previous checkpoint (online representation drift).
    """
    phi, psi = _as2d(sa_repr, "sa_repr"), _as2d(goal_repr, "goal_repr")
    o_phi, o_psi = _as2d(other[0], "other sa_repr"), _as2d(other[1], "other goal_repr")
    out = {f"cka_sa{suffix}": linear_cka(phi, o_phi), f"cka_goal{suffix}": linear_cka(psi, o_psi)}
    if debiased:
        out[f"cka_sa_debiased{suffix}"] = linear_cka(phi, o_phi, debiased=True)
        out[f"cka_goal_debiased{suffix}"] = linear_cka(psi, o_psi, debiased=True)
    out[f"q_corr{suffix}"] = spearman(critic_values(phi, psi, energy), critic_values(o_phi, o_psi, energy))
    return out
