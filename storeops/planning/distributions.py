"""Demand distributions for ordering decisions, vectorised and without SciPy (the Lambda has numpy only).

Demand over a window is described by its mean and its variance (never below the mean: retail demand
is overdispersed). Small means use the negative binomial with that mean and variance (Poisson when
they are equal), large ones the normal with a continuity correction: quantiles (order-up-to levels)
and the expected shortfall E[(D - x)+] (units a stock of x fails to serve).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SMALL_MEAN = 60.0  # below this the negative binomial is summed term by term; above, the normal (skew-corrected)
_TAIL = 10.0  # terms summed up to mean + _TAIL standard deviations (and a few units)
_BUCKETS = (16, 32, 64, 128, 256, 512, 1024)  # pmf tables are built per bucket of similar length


def normal_cdf(x: np.ndarray) -> np.ndarray:
    """Phi(x), within 1.5e-7 (Abramowitz & Stegun 7.1.26 for erf)."""
    x = np.asarray(x, dtype=np.float64)
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-z * z)
    return np.asarray(0.5 * (1.0 + np.sign(x) * erf))


def normal_pdf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return np.asarray(np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi))


def normal_ppf(q: np.ndarray) -> np.ndarray:
    """Phi^-1(q) for q in (0, 1), within 1.2e-9 (Acklam's rational approximation)."""
    q = np.clip(np.asarray(q, dtype=np.float64), 1e-12, 1 - 1e-12)
    a = (
        -39.69683028665376,
        220.9460984245205,
        -275.9285104469687,
        138.3577518672690,
        -30.66479806614716,
        2.506628277459239,
    )
    b = (-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572)
    c = (
        -0.007784894002430293,
        -0.3223964580411365,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    )
    d = (0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416)
    low, high = 0.02425, 1 - 0.02425
    out = np.empty_like(q)
    tail = q < low
    r = np.sqrt(-2 * np.log(q[tail]))
    out[tail] = (((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) / (
        (((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1
    )
    upper = q > high
    r = np.sqrt(-2 * np.log(1 - q[upper]))
    out[upper] = -(((((c[0] * r + c[1]) * r + c[2]) * r + c[3]) * r + c[4]) * r + c[5]) / (
        (((d[0] * r + d[1]) * r + d[2]) * r + d[3]) * r + 1
    )
    mid = ~tail & ~upper
    s = q[mid] - 0.5
    r = s * s
    out[mid] = (
        (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5])
        * s
        / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    )
    return out


def _nb_pmf_table(mean: np.ndarray, var: np.ndarray, top: int) -> np.ndarray:
    """(n, top + 1): P(D = k) for k = 0..top, negative binomial (Poisson where var == mean)."""
    n = mean.size
    pmf = np.zeros((n, top + 1))
    poisson = var <= mean * (1 + 1e-9)
    # negative binomial: r = mean^2 / (var - mean), p = mean / var (success probability of "no demand")
    r = np.where(poisson, 1.0, mean**2 / np.maximum(var - mean, 1e-12))
    p = np.where(poisson, 1.0, mean / np.maximum(var, 1e-12))
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.where(poisson, np.exp(-mean), np.exp(r * np.log(np.maximum(p, 1e-300))))
    pmf[:, 0] = first
    for k in range(top):
        ratio = np.where(poisson, mean / (k + 1), (k + r) / (k + 1) * (1 - p))
        pmf[:, k + 1] = pmf[:, k] * ratio
    return pmf


def _tops(mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Each element's pmf length, rounded up to a bucket."""
    need = np.ceil(mean + _TAIL * np.sqrt(np.maximum(var, mean))) + 5
    return np.asarray(_BUCKETS)[np.minimum(np.searchsorted(_BUCKETS, need), len(_BUCKETS) - 1)]


def _by_bucket(mean: np.ndarray, var: np.ndarray, rows: np.ndarray):  # type: ignore[no-untyped-def]
    """(indices into ``rows``, pmf table) per bucket of similar table length."""
    tops = _tops(mean[rows], var[rows])
    for top in np.unique(tops):
        part = rows[tops == top]
        yield part, _nb_pmf_table(mean[part], var[part], int(top))


def _skewed_normal_quantile(mean: np.ndarray, var: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The Cornish-Fisher quantile of a negative binomial with a large mean: the normal, corrected for skew."""
    sd = np.sqrt(var)
    skew = (2 * var - mean) / (sd * mean)  # (2 - p) / sqrt(r (1 - p)) in mean and variance
    z = normal_ppf(q)
    return np.asarray(mean + sd * (z + (z * z - 1) * skew / 6))


def _moments(mean: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (at least 0) and the variance (at least the mean) as float arrays."""
    mean = np.maximum(np.asarray(mean, dtype=np.float64), 0.0)
    return mean, np.maximum(np.asarray(var, dtype=np.float64), mean)


def _per_element(
    mean: np.ndarray,
    var: np.ndarray,
    x: np.ndarray,
    at_zero_mean: float,
    normal: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    from_pmf: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """A figure of each element's demand at ``x``: ``normal(mean, var, x)`` where the mean is at least
    ``SMALL_MEAN``, ``from_pmf(pmf table, x)`` where it is smaller, ``at_zero_mean`` where it is 0."""
    mean, var = _moments(mean, var)
    x = np.broadcast_to(np.asarray(x, dtype=np.float64), mean.shape)
    out = np.full(mean.shape, at_zero_mean)
    large = mean >= SMALL_MEAN
    if large.any():
        out[large] = normal(mean[large], var[large], x[large])
    for part, pmf in _by_bucket(mean, var, np.flatnonzero(~large & (mean > 0))):
        out[part] = from_pmf(pmf, x[part])
    return out


def demand_quantile(mean: np.ndarray, var: np.ndarray, q: np.ndarray) -> np.ndarray:
    """The smallest whole x with P(D <= x) >= q, per element (x = 0 where the mean is 0)."""

    def normal(mean: np.ndarray, var: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.ceil(_skewed_normal_quantile(mean, var, q) - 0.5)

    def from_pmf(pmf: np.ndarray, q: np.ndarray) -> np.ndarray:
        return (np.cumsum(pmf, axis=1) < q[:, None] - 1e-12).sum(axis=1)

    return np.maximum(_per_element(mean, var, q, 0.0, normal, from_pmf), 0.0)


def expected_shortfall(mean: np.ndarray, var: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """E[(D - stock)+]: the units of demand a stock of ``stock`` (at least 0) fails to serve."""

    def normal(mean: np.ndarray, var: np.ndarray, stock: np.ndarray) -> np.ndarray:
        sd = np.sqrt(var)
        z = (stock + 0.5 - mean) / sd
        return sd * (normal_pdf(z) - z * (1 - normal_cdf(z)))  # the normal loss function

    def from_pmf(pmf: np.ndarray, stock: np.ndarray) -> np.ndarray:
        k = np.arange(pmf.shape[1])[None, :]
        return (np.maximum(k - stock[:, None], 0.0) * pmf).sum(axis=1)

    return _per_element(mean, var, np.maximum(np.asarray(stock, dtype=np.float64), 0.0), 0.0, normal, from_pmf)


def probability_at_most(mean: np.ndarray, var: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """P(D <= stock) per element."""

    def normal(mean: np.ndarray, var: np.ndarray, stock: np.ndarray) -> np.ndarray:
        return normal_cdf((np.floor(stock) + 0.5 - mean) / np.sqrt(var))

    def from_pmf(pmf: np.ndarray, stock: np.ndarray) -> np.ndarray:
        k = np.arange(pmf.shape[1])[None, :]
        return (pmf * (k <= np.floor(stock)[:, None])).sum(axis=1)

    return np.clip(_per_element(mean, var, stock, 1.0, normal, from_pmf), 0.0, 1.0)


def cdf_table(mean: np.ndarray, var: np.ndarray, top: int) -> np.ndarray:
    """(n, top + 1): P(D <= k) for k = 0..top per element (negative binomial, the skew-free normal above
    ``SMALL_MEAN``)."""
    mean, var = _moments(mean, var)
    table = np.ones((mean.size, top + 1))
    large = mean >= SMALL_MEAN
    if large.any():
        k = np.arange(top + 1)[None, :]
        table[large] = normal_cdf((k + 0.5 - mean[large][:, None]) / np.sqrt(var[large])[:, None])
    small = np.flatnonzero(~large & (mean > 0))
    if small.size:
        table[small] = np.cumsum(_nb_pmf_table(mean[small], var[small], top), axis=1)
    return np.minimum(table, 1.0)
