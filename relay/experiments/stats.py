"""Experiment statistics from what an aggregator keeps incrementally (exposures, conversions and, for numeric
metrics, the count, sum and sum of squares of per-context values): pure functions, no I/O. Sources are cited
here and in docs/experiments.md, with simulation figures. Anything undefined is None, never NaN."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from scipy import integrate, special, stats

Interval = tuple[float, float]

SRM_THRESHOLD = 0.001  # below this p-value the split is broken and no verdict is given
DEFAULT_TAU = 0.05  # mSPRT mixing sd, in per-context standard deviations (docs: "Sequential")
NORMAL_APPROX_MIN = 100_000  # every Beta parameter at least this: normal approximation (error < 5e-4)


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares of a numeric metric's per-context values in one variation."""

    count: int
    total: float
    total_sq: float

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count > 0 else None

    @property
    def variance(self) -> float | None:
        """Sample variance (n-1), None below 2 values or past float range. From sums of squares it loses
        digits when mean² ≫ variance (Chan, Golub & LeVeque 1983), the price of incremental sums: clamp at 0."""
        v = (self.total_sq - self.total * self.total / self.count) / (self.count - 1) if self.count > 1 else math.nan
        return max(0.0, v) if math.isfinite(v) else None


@dataclass(frozen=True)
class Arm:
    """One variation's data. `moments` is set for numeric metrics and None for conversion metrics."""

    value: Any
    exposed: int
    converted: int = 0
    moments: Moments | None = None


@dataclass(frozen=True)
class Difference:
    """Treatment minus control: estimate, standard error, CI and two-sided p-value (df for Welch)."""

    diff: float
    se: float
    ci: Interval
    p_value: float
    df: float | None = None


@dataclass(frozen=True)
class Srm:
    p_value: float | None
    ok: bool


@dataclass(frozen=True)
class Comparison:
    """One variation against the control, as the report gives it: None wherever undefined."""

    index: int
    diff: float | None = None
    diff_ci: Interval | None = None
    lift: float | None = None
    lift_ci: Interval | None = None
    p_value: float | None = None
    sequential_ci: Interval | None = None
    sequential_p_value: float | None = None
    chance_to_win: float | None = None


def wilson_interval(converted: int, exposed: int, alpha: float = 0.05) -> Interval | None:
    """Wilson score interval for converted/exposed (Wilson 1927, JASA 22:209). None when exposed is 0."""
    if exposed <= 0:
        return None
    z, n, p = float(stats.norm.isf(alpha / 2)), exposed, converted / exposed
    # center (p + z²/2n)/(1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²)/(1 + z²/n): Wilson (1927)
    center, half, denom = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)), 1 + z * z / n
    lo, hi = (center - half) / denom, (center + half) / denom  # at x = 0 and n exactly 0 and 1, not 2e-19 off
    return (0.0 if converted == 0 else lo), (1.0 if converted == exposed else hi)


def t_interval(m: Moments, alpha: float = 0.05) -> Interval | None:
    """Student t interval for a mean, mean ± t(1-α/2, n-1)·s/√n (Student 1908). None below 2 values."""
    mean, var = m.mean, m.variance
    if mean is None or var is None:
        return None
    half = float(stats.t.isf(alpha / 2, m.count - 1)) * math.sqrt(var / m.count)
    return mean - half, mean + half


def proportion_difference(xt: int, nt: int, xc: int, nc: int, alpha: float = 0.05) -> Difference | None:
    """p_t - p_c with the unpooled (Wald) standard error, its CI and the unpooled two-proportion z-test
    (Agresti, Categorical Data Analysis, 3rd ed. 2013, ch. 3). None when an arm is empty or se is 0."""
    if nt <= 0 or nc <= 0:
        return None
    pt, pc = xt / nt, xc / nc
    se = math.sqrt(pt * (1 - pt) / nt + pc * (1 - pc) / nc)
    if se == 0:  # both arms all-or-nothing: the Wald estimate of the variance says nothing
        return None
    diff, z = pt - pc, float(stats.norm.isf(alpha / 2))
    return Difference(diff, se, (diff - z * se, diff + z * se), float(2 * stats.norm.sf(abs(diff) / se)))


def welch_difference(t: Moments, c: Moments, alpha: float = 0.05) -> Difference | None:
    """mean_t - mean_c, Welch's t-test with Welch–Satterthwaite degrees of freedom (Welch 1947,
    Biometrika 34:28; Satterthwaite 1946). None below 2 values an arm or with zero variance."""
    vt, vc = t.variance, c.variance
    if vt is None or vc is None or t.mean is None or c.mean is None:
        return None
    a, b = vt / t.count, vc / c.count
    if not a + b > 0:  # no variance in either arm: nothing to test
        return None
    se, diff, wa = math.sqrt(a + b), t.mean - c.mean, a / (a + b)
    # df = (a+b)²/(a²/(n_t-1) + b²/(n_c-1)), with a and b scaled to sum to 1 so no square underflows
    df = 1 / (wa * wa / (t.count - 1) + (1 - wa) * (1 - wa) / (c.count - 1))
    q = float(stats.t.isf(alpha / 2, df))
    return Difference(diff, se, (diff - q * se, diff + q * se), float(2 * stats.t.sf(abs(diff) / se, df)), df)


def ratio_lift(t: float, vt: float, c: float, vc: float, alpha: float = 0.05) -> tuple[float, Interval | None] | None:
    """Relative lift t/c - 1 of two estimates of variances vt, vc, and its delta-method CI:
    se = sqrt(vt/c² + t²·vc/c⁴) (Casella & Berger, Statistical Inference, 2nd ed. 2002, §5.5.4;
    Kohavi, Tang & Xu 2020, ch. 18). None when c is 0; the CI is None when se is 0."""
    if c == 0:
        return None
    r, z = t / c, float(stats.norm.isf(alpha / 2))
    lift, se = r - 1, math.sqrt(vt + r * r * vc) / abs(c)  # the same as sqrt(vt + r²·vc)/|c|, without c⁴ to overflow
    return lift, ((lift - z * se, lift + z * se) if se > 0 else None)


def sequential_interval(diff: float, se: float, tau: float, alpha: float = 0.05) -> Difference | None:
    """CI and p-value valid however often the data is looked at: the mSPRT with a N(0, τ²) mixture over
    the effect (Johari, Pekelis & Walsh, "Always valid inference", arXiv:1512.04922). With V = se²: the
    half-width is sqrt(V(V+τ²)/τ² · (2 log(1/α) + log((V+τ²)/V))) and p = min(1, 1/Λ) with
    Λ = sqrt(V/(V+τ²))·exp(τ²·diff²/(2V(V+τ²))). `tau` is on the scale of diff."""
    # in units of se, r = τ²/V and d = diff/se: the same formulas, without squares leaving float range
    r = (tau / se) * (tau / se) if se > 0 and tau > 0 else 0.0
    if not 0 < r < math.inf:  # no se or no tau, or one negligible beside the other
        return None
    d = diff / se
    half = se * math.sqrt((1 + r) / r * (2 * math.log(1 / alpha) + math.log1p(r)))
    log_lambda = r * d * d / (2 * (1 + r)) - 0.5 * math.log1p(r)
    # p is this look's 1/Λ; a caller keeping history takes the running minimum (still always valid)
    return Difference(diff, se, (diff - half, diff + half), math.exp(-max(0.0, log_lambda)))


def chance_to_beat(xt: int, nt: int, xc: int, nc: int, method: str = "auto") -> float:
    """P(p_t > p_c) with Beta(1+x, 1+n-x) posteriors (Evan Miller 2015, "Formulas for Bayesian A/B
    testing"). "integral": ∫ f_c(p)·(1 - F_t(p)) dp by scipy quad; "normal": Φ((m_t - m_c)/sqrt(v_t + v_c))
    from the posterior means and variances; "auto": normal once all four Beta parameters reach
    NORMAL_APPROX_MIN (measured worst gap to the integral there 4.1e-4), else the integral."""
    at, bt, ac, bc = 1 + xt, 1 + nt - xt, 1 + xc, 1 + nc - xc
    if method == "auto":
        method = "normal" if min(at, bt, ac, bc) >= NORMAL_APPROX_MIN else "integral"
    (mt, st), (mc, sc) = ((a / (a + b), math.sqrt(a * b / (a + b) ** 2 / (a + b + 1))) for a, b in ((at, bt), (ac, bc)))
    if method == "normal":
        return float(stats.norm.cdf((mt - mc) / math.hypot(st, sc)))
    if method != "integral":
        raise ValueError(f"unknown method {method!r}")
    # Only where the control has mass, 1e-15 from each end (with millions of exposures its pdf is a spike quad
    # over [0, 1] would step over), broken at both means and ±1 sd, where the integrand bends.
    lo, hi = float(special.betaincinv(ac, bc, 1e-15)), float(special.betainccinv(ac, bc, 1e-15))
    points = sorted(p for p in {m + k * sd for m, sd in ((mt, st), (mc, sc)) for k in (-1, 0, 1)} if lo < p < hi)
    # The pdf relative to its value at the mean (one scipy.stats call: 30x a special function's cost). From
    # xlogy and betaln directly, terms of 1e6 would cancel to relative errors of 4e-7 at 1e9 exposures.
    pdf_mean = float(stats.beta.pdf(mc, ac, bc))

    def integrand(p: float) -> float:
        rel = special.xlog1py(ac - 1, (p - mc) / mc) + special.xlog1py(bc - 1, (mc - p) / (1 - mc))
        return pdf_mean * math.exp(rel) * float(special.betaincc(at, bt, p))

    value, _ = integrate.quad(integrand, lo, hi, points=points, epsabs=1e-13, epsrel=1e-11, limit=200)
    return min(1.0, max(0.0, float(value)))


def sample_ratio(exposed: Sequence[int], weights: Sequence[float], threshold: float = SRM_THRESHOLD) -> Srm:
    """Chi-square goodness of fit of exposures to the rollout weights (Pearson 1900; for SRM, Fabijan et
    al., KDD 2019). Arms of weight 0 leave the degrees of freedom; any exposure in one is a mismatch
    (p = 0). p is None, and ok, with no exposures or fewer than 2 weighted arms: nothing to test."""
    if len(exposed) != len(weights) or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("weights: one non-negative weight a variation, not all 0")
    if any(n > 0 for n, w in zip(exposed, weights, strict=True) if w == 0):
        return Srm(0.0, False)
    live = [(n, w) for n, w in zip(exposed, weights, strict=True) if w > 0]
    total, wsum = sum(n for n, _ in live), sum(w for _, w in live)
    if total == 0 or len(live) < 2:
        return Srm(None, True)
    chi2 = sum((n - total * w / wsum) ** 2 / (total * w / wsum) for n, w in live)  # Σ (O - E)²/E
    p = float(stats.chi2.sf(chi2, len(live) - 1))
    return Srm(p, p >= threshold)


def compare(t: Arm, c: Arm, index: int, alpha: float = 0.05, tau: float = DEFAULT_TAU) -> Comparison:
    """Variation `t` (at `index`) against the control `c`: on the means when both carry moments, chance_to_win
    then Φ(diff/se), the flat-prior normal posterior (Gelman et al., BDA 3rd ed., ch. 4); else on the rates. tau
    is in per-context standard deviations, so that one default fits any metric's scale (docs/experiments.md)."""
    if t.moments is not None and c.moments is not None:
        mt, vt, nt = t.moments.mean, t.moments.variance, t.moments.count
        mc, vc, nc = c.moments.mean, c.moments.variance, c.moments.count
        if mt is None or vt is None or mc is None or vc is None:
            return Comparison(index)
        d = welch_difference(t.moments, c.moments, alpha)
        chance = None if d is None else float(stats.norm.cdf(d.diff / d.se))
    else:
        if t.exposed <= 0 or c.exposed <= 0:
            return Comparison(index)
        nt, nc, mt, mc = t.exposed, c.exposed, t.converted / t.exposed, c.converted / c.exposed
        vt, vc = mt * (1 - mt), mc * (1 - mc)  # per-context Bernoulli variances
        d = proportion_difference(t.converted, nt, c.converted, nc, alpha)
        chance = chance_to_beat(t.converted, nt, c.converted, nc)
    lift, lift_ci = ratio_lift(mt, vt / nt, mc, vc / nc, alpha) or (None, None)
    if d is None:
        return Comparison(index, lift=lift, lift_ci=lift_ci, chance_to_win=chance)
    seq = sequential_interval(d.diff, d.se, tau * math.sqrt((vt + vc) / 2), alpha)
    seq_ci, seq_p = (seq.ci, seq.p_value) if seq else (None, None)
    return Comparison(index, d.diff, d.ci, lift, lift_ci, d.p_value, seq_ci, seq_p, chance)


def _json(x: Any) -> Any:
    """Tuples as lists, floats as plain floats, NaN and infinities as None (orjson would write them as
    null silently, the json module as invalid JSON): one pass over the whole report guarantees it."""
    if isinstance(x, dict):
        return {k: _json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json(v) for v in x]
    if isinstance(x, float):
        return float(x) if math.isfinite(x) else None
    return x


def _verdict(comparisons: list[Comparison], srm: Srm) -> str:
    """First "srm", then by the always-valid intervals (a report is read at any time): the largest effect
    whose interval is above 0, else the worst one below 0, else "no significant difference"."""
    if not srm.ok:
        return "srm"
    live = [(c.diff, c.sequential_ci, c.index) for c in comparisons if c.diff is not None and c.sequential_ci]
    if not live:
        return "insufficient data"
    if better := [(diff, i) for diff, (lo, _), i in live if lo > 0]:
        return f"variation {max(better)[1]} better"
    if worse := [(diff, i) for diff, (_, hi), i in live if hi < 0]:
        return f"variation {min(worse)[1]} worse"
    return "no significant difference"


def report(
    flag: str,
    metric: str,
    arms: Sequence[Arm],
    weights: Sequence[float] | None = None,
    *,
    control: int = 0,
    alpha: float = 0.05,
    tau: float = DEFAULT_TAU,
    excluded: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The JSON-ready report of one flag's experiment on one metric (shape in docs/experiments.md).
    weights: the rollout's per-variation weights (LaunchDarkly's integers out of 100000, or any
    non-negative numbers; None is an even split). A numeric metric is one whose arms all carry
    moments. Only floats, ints, strings, lists, dicts and None come out: never NaN or infinity."""
    if not (0 < alpha < 1 and tau > 0 and 0 <= control < len(arms)):
        raise ValueError("need 0 < alpha < 1, tau > 0 and control a variation index")
    if any(not 0 <= a.converted <= a.exposed for a in arms) or len({a.moments is None for a in arms}) > 1:
        raise ValueError("need 0 <= converted <= exposed, and moments on every variation or on none")
    srm = sample_ratio([a.exposed for a in arms], [1.0] * len(arms) if weights is None else weights)
    comparisons = [compare(a, arms[control], i, alpha, tau) for i, a in enumerate(arms) if i != control]
    variations = []
    for i, a in enumerate(arms):
        row: dict[str, Any] = {"index": i, "value": a.value, "exposed": a.exposed, "converted": a.converted}
        row["rate"] = a.converted / a.exposed if a.exposed else None
        row["rate_ci"] = wilson_interval(a.converted, a.exposed, alpha)
        if a.moments is not None:
            row["mean"], row["mean_ci"] = a.moments.mean, t_interval(a.moments, alpha)
        variations.append(row)
    return _json(
        {
            "flag": flag,
            "metric": metric,
            "control": control,
            "alpha": float(alpha),
            "verdict": _verdict(comparisons, srm),
            "sequential": {"method": "msprt-normal-mixture", "tau": float(tau)},
            "variations": variations,
            "comparisons": [asdict(c) for c in comparisons],
            "srm": asdict(srm),
            "excluded": dict(excluded or {}),
        }
    )
