"""Every metric against an independent reference: brute force, Gram-form, scipy, or hand values."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from gatekit import metrics as M
from gatekit.errors import GatekitError

rng = np.random.default_rng(0)


def random_rotation(d, seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


# ---- policy statistics ---------------------------------------------------------------------

def test_action_magnitude_hand_values():
    # |tanh(0)| = 0, |tanh(atanh 0.5)| = 0.5, |tanh(atanh -0.8)| = 0.8 -> (0 + .5 + .8 + 0) / 4 = 0.325
    mu = np.array([[0.0, np.arctanh(0.5)], [np.arctanh(-0.8), 0.0]])
    assert M.action_magnitude(mu) == pytest.approx(0.325, abs=1e-12)


def test_paper_threshold_in_mu_units():
    # |tanh mu| < 0.63  <=>  |mu| < artanh(0.63) = 0.7414
    assert M.action_magnitude([[0.741]]) == pytest.approx(0.63, abs=1e-3)


def test_gaussian_entropy_hand_value():
    # log_std = 0 in 2 dims: 2 * 0.5 * log(2 pi e) = log(2 pi e) = 2.8379
    assert M.gaussian_entropy(np.zeros((5, 2))) == pytest.approx(math.log(2 * math.pi * math.e))
    # scipy's Gaussian entropy for sigma = e^-1 in 3 dims
    ref = 3 * stats.norm(scale=math.exp(-1)).entropy()
    assert M.gaussian_entropy(np.full((4, 3), -1.0)) == pytest.approx(ref)
    assert M.log_std_mean([[-1.0, 1.0], [0.0, 2.0]]) == pytest.approx(0.5)


# ---- effective rank ------------------------------------------------------------------------

def rankme_reference(z, eps=1e-7):
    s = np.linalg.svd(z, compute_uv=False)
    p = s / s.sum() + eps
    return np.exp(-(p * np.log(p)).sum())


@pytest.mark.parametrize("shape", [(200, 16), (10, 32)])
def test_effective_rank_matches_svd_reference(shape):
    z = rng.normal(size=shape) @ np.diag(np.linspace(0.1, 3, shape[1]))
    assert M.effective_rank(z) == pytest.approx(rankme_reference(z), rel=1e-9)


def test_effective_rank_hand_values_and_invariances():
    # identity: 8 equal singular values -> p = 1/8 (+eps) -> exp(log 8) = 8
    assert M.effective_rank(np.eye(8)) == pytest.approx(8.0, rel=1e-5)
    # rank one: a single nonzero singular value -> about 1 (eps slack only)
    z1 = np.outer(rng.normal(size=100), rng.normal(size=16))
    assert 1.0 <= M.effective_rank(z1) < 1.001
    z = rng.normal(size=(300, 12))
    assert M.effective_rank(7.5 * z) == pytest.approx(M.effective_rank(z), rel=1e-9)
    assert M.effective_rank(z @ random_rotation(12)) == pytest.approx(M.effective_rank(z), rel=1e-9)


# ---- alignment / uniformity ----------------------------------------------------------------

def test_alignment_hand_values():
    # normalized (1,0) vs (0,3)->(0,1): ||(1,-1)||^2 = 2 ; raw: ||(1,-3)||^2 = 10
    x, y = np.array([[1.0, 0.0]]), np.array([[0.0, 3.0]])
    assert M.alignment(x, y) == pytest.approx(2.0)
    assert M.alignment(x, y, normalize=False) == pytest.approx(10.0)


def uniformity_double_loop(x, t=2.0):
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    vals = [math.exp(-t * np.sum((x[i] - x[j]) ** 2)) for i, j in itertools.combinations(range(len(x)), 2)]
    return math.log(sum(vals) / len(vals))


@pytest.mark.parametrize("block", [1, 7, 2048])
def test_uniformity_matches_double_loop(block):
    x = rng.normal(size=(40, 5))
    assert M.uniformity(x, block=block) == pytest.approx(uniformity_double_loop(x), rel=1e-10)


def test_uniformity_invariances_and_bounds():
    x = rng.normal(size=(64, 6))
    u = M.uniformity(x)
    assert M.uniformity(3 * x @ random_rotation(6)) == pytest.approx(u, rel=1e-10)
    # identical points: exp(0) = 1 -> log 1 = 0 ; antipodal pair: exp(-2 * 4) -> -8
    assert M.uniformity(np.ones((5, 3))) == pytest.approx(0.0, abs=1e-12)
    assert M.uniformity(np.array([[1.0, 0], [-1.0, 0]])) == pytest.approx(-8.0)
    with pytest.raises(GatekitError, match="at least 2"):
        M.uniformity(np.ones((1, 3)))


# ---- energies, InfoNCE, contrastive accuracy -----------------------------------------------

@pytest.mark.parametrize("kind", ["neg_l2_sq", "neg_l2", "dot"])
def test_numpy_pairwise_energy_matches_jax_direct_form(kind):
    from gatekit import networks

    x, y = rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    ref = np.asarray(networks.pairwise_energy(x.astype(np.float32), y.astype(np.float32), kind))
    np.testing.assert_allclose(M.pairwise_energy(x, y, kind), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(M.diagonal_energy(x[:5], y, kind), np.diag(M.pairwise_energy(x[:5], y, kind)), atol=1e-10)


def test_energy_hand_values():
    x, y = np.array([[0.0, 0.0]]), np.array([[3.0, 4.0]])  # ||x - y||^2 = 25
    assert M.pairwise_energy(x, y, "neg_l2_sq")[0, 0] == pytest.approx(-25.0)
    assert M.pairwise_energy(x, y, "neg_l2")[0, 0] == pytest.approx(-math.sqrt(25 + 1e-6))
    assert M.pairwise_energy(np.array([[1.0, 2.0]]), y, "dot")[0, 0] == pytest.approx(11.0)


@pytest.mark.parametrize("kind,tau,block", [("neg_l2_sq", 1.0, 3), ("dot", 0.5, 100), ("neg_l2", 2.0, 1)])
def test_infonce_matches_direct_loop(kind, tau, block):
    x, y = rng.normal(size=(9, 3)), rng.normal(size=(9, 3))
    total = 0.0
    for i in range(9):
        logits = [M.diagonal_energy(x[i:i + 1], y[j:j + 1], kind)[0] / tau for j in range(9)]
        total += -logits[i] + math.log(sum(math.exp(v) for v in logits))
    assert M.infonce(x, y, energy=kind, tau=tau, block=block) == pytest.approx(total / 9, rel=1e-10)


def test_infonce_hand_value_two_rows():
    # dot energy, x = y = I_2: logits [[1,0],[0,1]] -> loss per row = log(e + 1) - 1
    assert M.infonce(np.eye(2), np.eye(2), energy="dot") == pytest.approx(math.log(math.e + 1) - 1)


def test_contrastive_accuracy():
    x = rng.normal(size=(50, 8))
    assert M.contrastive_accuracy(x, x.copy(), block=7) == 1.0  # own goal at distance 0
    # shuffled positives: the diagonal wins only where the permutation fixes the row
    perm = np.roll(np.arange(50), 1)
    assert M.contrastive_accuracy(x, x[perm]) == 0.0


# ---- CKA -----------------------------------------------------------------------------------

def hsic_gram(k, l):
    n = len(k)
    h = np.eye(n) - 1.0 / n
    return np.trace(k @ h @ l @ h) / (n - 1) ** 2


def hsic_unbiased(k, l):
    # Song et al. 2012, eq. 5: U-statistic on Gram matrices with zeroed diagonals
    n = len(k)
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    return (np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
            - 2.0 / (n - 2) * one @ k @ l @ one) / (n * (n - 3))


def cka_gram(x, y, hsic):
    k, l = x @ x.T, y @ y.T
    return hsic(k, l) / math.sqrt(hsic(k, k) * hsic(l, l))


def test_cka_matches_gram_form():
    x = rng.normal(size=(30, 5))
    y = x @ rng.normal(size=(5, 7)) + 0.5 * rng.normal(size=(30, 7))
    assert M.linear_cka(x, y) == pytest.approx(cka_gram(x, y, hsic_gram), rel=1e-10)
    assert M.linear_cka(x, y, debiased=True) == pytest.approx(cka_gram(x, y, hsic_unbiased), rel=1e-9)


def test_cka_invariances_and_bias():
    x = rng.normal(size=(100, 6))
    y = np.tanh(x @ rng.normal(size=(6, 6)))
    c = M.linear_cka(x, y)
    assert M.linear_cka(x, x) == pytest.approx(1.0)
    assert M.linear_cka(2.5 * x @ random_rotation(6) + 3.0, y) == pytest.approx(c, rel=1e-10)
    # independent 256-d features at n = 64: biased linear CKA is inflated when d >> n (about 0.8
    # here; Kornblith et al. 2019), the debiased estimator (Song et al. 2012) is about 0
    a, b = rng.normal(size=(64, 256)), rng.normal(size=(64, 256))
    assert M.linear_cka(a, b) > 0.7
    assert abs(M.linear_cka(a, b, debiased=True)) < 0.1
    with pytest.raises(GatekitError, match="inconsistent numbers of samples"):
        M.linear_cka(a, b[:10])
    with pytest.raises(GatekitError, match="at least 4"):
        M.linear_cka(a[:3], b[:3], debiased=True)


def test_spearman_matches_scipy_with_ties():
    a = rng.integers(0, 5, size=40).astype(float)
    b = a + rng.normal(size=40)
    assert M.spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, rel=1e-12)
    with pytest.raises(GatekitError, match="constant"):
        M.spearman(np.ones(5), np.arange(5))


def test_each_group_function_computes_exactly_its_registry_names():
    from gatekit import statistics

    phi, psi = rng.normal(size=(32, 4)), rng.normal(size=(32, 4))
    computed = {
        "policy": M.policy_metrics(rng.normal(size=(10, 2)), rng.normal(size=(10, 2))),
        "representation": M.representation_metrics(phi, psi),
        "reference": M.similarity_metrics(phi, psi, (phi, psi)),
        "drift": M.similarity_metrics(phi, psi, (phi, psi), suffix="_prev", debiased=False),
    }
    from gatekit.studentside import student_side_scores

    obs, goal = rng.normal(size=(8, 4)), rng.normal(size=(8, 2))
    computed["student"] = student_side_scores(obs, goal, rng.normal(size=(8, 2)), rng.normal(size=(8, 2)) - 1,
                                              mu_prev=rng.normal(size=(8, 2)))
    for group, out in computed.items():
        assert set(out) == {s.name for s in statistics.REGISTRY if s.group == group}, group
    assert set().union(*computed.values()) == set(statistics.METRIC_NAMES)
    assert computed["reference"]["cka_sa"] == pytest.approx(1.0) and computed["reference"]["q_corr"] == pytest.approx(1.0)
    assert all(np.isfinite(v) for out in computed.values() for v in out.values())


def test_rankdata_and_spearman_match_scipy():
    from scipy import stats

    from gatekit.metrics import rankdata, spearman

    rng = np.random.default_rng(0)
    for _ in range(100):
        x = rng.integers(0, 5, size=int(rng.integers(2, 30))).astype(float)  # many ties
        y = rng.normal(size=x.size)
        np.testing.assert_allclose(rankdata(x), stats.rankdata(x))
        if np.ptp(x) > 0:
            assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)


@pytest.mark.parametrize("kind", ["neg_l2_sq", "neg_l2"])
def test_jax_pairwise_energy_by_matmul_matches_broadcast_with_gradients(kind):
    """The training loss's all-pairs critic (one matmul) equals the direct broadcast form, values
    and gradients, to float32 rounding; identical rows give distance 0, never a negative one."""
    import jax
    import jax.numpy as jnp

    from gatekit import networks

    x = jax.random.normal(jax.random.PRNGKey(0), (64, 16)) * 3
    y = jax.random.normal(jax.random.PRNGKey(1), (48, 16)) * 3

    def direct(a, b):
        return networks.energy(a[:, None, :], b[None, :, :], kind)

    def loss(f):
        return lambda a, b: jnp.sum(jax.nn.log_softmax(f(a, b), axis=1) * jnp.linspace(0, 1, b.shape[0]))

    fast = lambda a, b: networks.pairwise_energy(a, b, kind)  # noqa: E731
    np.testing.assert_allclose(fast(x, y), direct(x, y), rtol=1e-5, atol=1e-3)
    for g_fast, g_direct in zip(jax.grad(loss(fast), (0, 1))(x, y), jax.grad(loss(direct), (0, 1))(x, y)):
        np.testing.assert_allclose(g_fast, g_direct, rtol=1e-3, atol=1e-3 * float(np.abs(g_direct).max()))
    same = np.asarray(networks.pairwise_energy(x[:4], x[:4], kind))
    # A row's squared distance to itself by the Gram trick is a cancellation of |x|^2 terms: it is
    # zero up to a few float32 ulps of |x|^2 (which ones depends on the CPU's matmul kernel).
    sq_self = -np.diag(same) if kind == "neg_l2_sq" else np.diag(same).astype(np.float64) ** 2 - 1e-6
    ulps = 4 * np.finfo(np.float32).eps * float(np.max(np.sum(np.asarray(x[:4]) ** 2, axis=-1)))
    assert np.all(same <= 0) and np.all(sq_self >= -1e-9) and np.all(sq_self <= ulps), (sq_self, ulps)
