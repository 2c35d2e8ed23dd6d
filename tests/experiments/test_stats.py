"""relay.experiments.stats against statsmodels/scipy on fixed tables, then by simulation: coverage of the
95% intervals, the A/A false-positive rate under 30 looks, sample-ratio-mismatch detection; and edges."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, optimize
from scipy import stats as sps
from statsmodels.stats import proportion as smp

from relay.experiments import stats
from relay.experiments.stats import (
    NORMAL_APPROX_MIN,
    Arm,
    Moments,
    chance_to_beat,
    compare,
    proportion_difference,
    ratio_lift,
    report,
    sample_ratio,
    sequential_interval,
    t_interval,
    welch_difference,
    wilson_interval,
)

TABLES = [(0, 10), (1, 10), (10, 10), (3, 7), (50, 1000), (999, 1000), (123_456, 1_000_000), (5, 5000)]
PAIRS = [(11, 100, 9, 100), (1100, 10050, 1000, 10000), (0, 500, 3, 480), (40, 40, 39, 41), (5, 20_000, 1, 19_000)]


def moments(values: np.ndarray) -> Moments:
    return Moments(len(values), float(values.sum()), float((values * values).sum()))


def miller_exact(xt: int, nt: int, xc: int, nc: int) -> float:
    """P(p_t > p_c) for Beta(1+x, 1+n-x) posteriors by Evan Miller's closed-form sum (lgamma, no scipy)."""
    at, bt, ac, bc = 1 + xt, 1 + nt - xt, 1 + xc, 1 + nc - xc

    def betaln(a: float, b: float) -> float:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)

    terms = (betaln(ac + i, bc + bt) - math.log(bt + i) - betaln(1 + i, bt) - betaln(ac, bc) for i in range(at))
    return math.fsum(math.exp(t) for t in terms)


def no_chance(monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulations call compare() thousands of times; the Bayesian integral is not what they test."""
    monkeypatch.setattr(stats, "chance_to_beat", lambda *args, **kwargs: 0.5)


# ---- fixed tables against statsmodels / scipy -------------------------------------------------


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.01])
@pytest.mark.parametrize(("x", "n"), TABLES)
def test_wilson_matches_statsmodels(x: int, n: int, alpha: float) -> None:
    lo, hi = smp.proportion_confint(x, n, alpha=alpha, method="wilson")
    assert wilson_interval(x, n, alpha) == pytest.approx((lo, hi), abs=1e-9, rel=1e-9)


@pytest.mark.parametrize(("xt", "nt", "xc", "nc"), PAIRS)
def test_unpooled_difference_ci_and_z_test_match_statsmodels(xt: int, nt: int, xc: int, nc: int) -> None:
    d = proportion_difference(xt, nt, xc, nc)
    assert d is not None
    with np.errstate(divide="ignore", invalid="ignore"):  # statsmodels' odds ratio when an arm is all-converted
        ci = smp.confint_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff")
        test = smp.test_proportions_2indep(xt, nt, xc, nc, method="wald", compare="diff")
    assert d.diff == pytest.approx(xt / nt - xc / nc, abs=1e-12)
    assert d.ci == pytest.approx(tuple(map(float, ci)), abs=1e-9)
    assert d.diff / d.se == pytest.approx(test.statistic, rel=1e-9)
    assert d.p_value == pytest.approx(test.pvalue, abs=1e-9, rel=1e-9)
    assert d.se**2 == pytest.approx(test.variance, rel=1e-9)  # unpooled: the pooled variance differs here


@pytest.mark.parametrize("seed", range(4))
def test_welch_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(10, 2, size=20 + 17 * seed)
    y = rng.exponential(9, size=45 - 5 * seed)
    for alpha in (0.05, 0.2):
        d = welch_difference(moments(x), moments(y), alpha)
        assert d is not None and d.df is not None
        ref = sps.ttest_ind(x, y, equal_var=False)
        assert d.diff == pytest.approx(x.mean() - y.mean(), rel=1e-9)
        assert d.diff / d.se == pytest.approx(ref.statistic, rel=1e-9)
        assert d.p_value == pytest.approx(ref.pvalue, rel=1e-9)
        assert d.df == pytest.approx(ref.df, rel=1e-9)
        assert d.ci == pytest.approx(tuple(ref.confidence_interval(1 - alpha)), rel=1e-9)


@pytest.mark.parametrize("n", [2, 3, 30, 1000])
def test_t_interval_matches_scipy(n: int) -> None:
    x = np.random.default_rng(n).lognormal(1, 1, size=n)
    ref = sps.t.interval(0.95, n - 1, loc=x.mean(), scale=sps.sem(x))
    assert t_interval(moments(x)) == pytest.approx(ref, rel=1e-9)
    assert t_interval(moments(x[:1])) is None and t_interval(Moments(0, 0.0, 0.0)) is None


@pytest.mark.parametrize(
    ("exposed", "weights"),
    [
        ([5000, 5100], [50000, 50000]),
        ([20_000, 18_000], [1, 1]),
        ([3300, 3400, 3250], [33333, 33333, 33334]),
        ([1000, 3100, 5900], [10000, 30000, 60000]),
        ([900, 2100], [0.3, 0.7]),
    ],
)
def test_srm_matches_scipy_chisquare(exposed: list[int], weights: list[float]) -> None:
    total, wsum = sum(exposed), sum(weights)
    ref = sps.chisquare(exposed, [total * w / wsum for w in weights])
    srm = sample_ratio(exposed, weights)
    assert srm.p_value == pytest.approx(ref.pvalue, rel=1e-9, abs=1e-300)
    assert srm.ok == (ref.pvalue >= 0.001)


def test_delta_method_lift_matches_a_numerical_gradient() -> None:
    t, vt, c, vc = 0.11, 0.11 * 0.89 / 5000, 0.10, 0.10 * 0.90 / 4900
    lift, ci = ratio_lift(t, vt, c, vc) or (None, None)
    assert lift == pytest.approx(0.1, rel=1e-12) and ci is not None
    h = 1e-7  # Var(g) = g_t² vt + g_c² vc, gradient of g(t, c) = t/c - 1 by central differences
    g_t = ((t + h) / c - (t - h) / c) / (2 * h)
    g_c = (t / (c + h) - t / (c - h)) / (2 * h)
    se = math.sqrt(g_t**2 * vt + g_c**2 * vc)
    assert ci == pytest.approx((lift - 1.959963984540054 * se, lift + 1.959963984540054 * se), rel=1e-6)


def test_sequential_interval_inverts_the_mixture_likelihood_ratio() -> None:
    """Λ(θ0) = ∫ N(diff; θ0+δ, V) N(δ; 0, τ²) dδ / N(diff; θ0, V), integrated numerically: the interval's
    ends are where Λ = 1/α, and the p-value is 1/Λ(0)."""
    diff, se, tau, alpha = 0.012, 0.004, 0.01, 0.05

    def lam(theta0: float) -> float:
        def integrand(d: float) -> float:  # N(diff; θ0+δ, V) / N(diff; θ0, V) · N(δ; 0, τ²)
            log_ratio = ((diff - theta0) ** 2 - (diff - theta0 - d) ** 2) / (2 * se * se)
            return math.exp(log_ratio - d * d / (2 * tau * tau)) / (tau * math.sqrt(2 * math.pi))

        return integrate.quad(integrand, -12 * tau, 12 * tau, epsabs=0, epsrel=1e-12, limit=200)[0]

    s = sequential_interval(diff, se, tau, alpha)
    assert s is not None
    lo = optimize.brentq(lambda th: lam(th) - 1 / alpha, diff - 20 * se, diff, xtol=1e-14)
    hi = optimize.brentq(lambda th: lam(th) - 1 / alpha, diff, diff + 20 * se, xtol=1e-14)
    assert s.ci == pytest.approx((lo, hi), abs=1e-9)
    assert s.p_value == pytest.approx(1 / lam(0.0), rel=1e-7)
    assert sequential_interval(0.0, se, tau, alpha).p_value == 1.0  # type: ignore[union-attr]
    assert sequential_interval(diff, 0.0, tau) is None and sequential_interval(diff, se, 0.0) is None


def test_sequential_interval_is_scale_free_on_a_numeric_metric() -> None:
    """tau is in per-context standard deviations: dollars or cents, the same verdict at the same time."""
    rng = np.random.default_rng(7)
    x, y = rng.exponential(10, 3000), rng.exponential(10.8, 3000)
    dollars, cents = (
        compare(Arm(1, 3000, 3000, moments(k * y)), Arm(0, 3000, 3000, moments(k * x)), 1) for k in (1, 100)
    )
    assert dollars.sequential_ci is not None and dollars.sequential_p_value is not None
    assert cents.sequential_ci == pytest.approx(tuple(100 * b for b in dollars.sequential_ci), rel=1e-9)
    assert cents.sequential_p_value == pytest.approx(dollars.sequential_p_value, rel=1e-9)


@pytest.mark.parametrize(("xt", "nt", "xc", "nc"), [(3, 10, 5, 12), (19, 98, 24, 98), (100, 1000, 89, 1000), *PAIRS])
def test_chance_to_beat_matches_the_closed_form(xt: int, nt: int, xc: int, nc: int) -> None:
    assert chance_to_beat(xt, nt, xc, nc) == pytest.approx(miller_exact(xt, nt, xc, nc), abs=1e-9)
    assert chance_to_beat(xc, nc, xt, nt) == pytest.approx(1 - miller_exact(xt, nt, xc, nc), abs=1e-9)


@pytest.mark.parametrize(
    ("xt", "nt", "xc", "nc"), [(60, 500, 50, 500), (1, 30, 0, 25), (12_000, 1_000_000, 11_800, 990_000)]
)
def test_chance_to_beat_matches_monte_carlo(xt: int, nt: int, xc: int, nc: int) -> None:
    rng = np.random.default_rng(2024)
    t = rng.beta(1 + xt, 1 + nt - xt, 200_000)
    c = rng.beta(1 + xc, 1 + nc - xc, 200_000)
    assert chance_to_beat(xt, nt, xc, nc) == pytest.approx(float((t > c).mean()), abs=0.01)


@pytest.mark.parametrize("ratio", [1, 10, 100])
@pytest.mark.parametrize("rate", [0.001, 0.5])
@pytest.mark.parametrize("z", [-1.5, 0.0, 0.7, 2.0])
def test_chance_to_beat_normal_and_integral_agree_where_auto_switches(ratio: int, rate: float, z: float) -> None:
    """Right at the switch (every Beta parameter about NORMAL_APPROX_MIN, one arm up to 100x the other, the
    worst case for the skewness the normal approximation ignores) both paths agree to 1e-3."""
    nc = round(1.01 * NORMAL_APPROX_MIN / min(rate, 1 - rate))
    nt = nc * ratio
    xc = round(rate * nc)
    sd = math.sqrt(rate * (1 - rate) * (1 / nt + 1 / nc))
    xt = round((rate + z * sd) * nt)
    assert min(1 + xc, 1 + nc - xc, 1 + xt, 1 + nt - xt) >= NORMAL_APPROX_MIN
    normal, exact = chance_to_beat(xt, nt, xc, nc, "normal"), chance_to_beat(xt, nt, xc, nc, "integral")
    assert normal == pytest.approx(exact, abs=1e-3)
    assert chance_to_beat(xt, nt, xc, nc) == normal  # auto takes the normal path here
    assert chance_to_beat(xt - 1, nt, NORMAL_APPROX_MIN - 2, nc) == chance_to_beat(
        xt - 1, nt, NORMAL_APPROX_MIN - 2, nc, "integral"
    )


def test_chance_to_beat_with_hundreds_of_millions_of_exposures() -> None:
    """The integral path stays accurate at sizes quad over [0, 1] would miss (the pdf is a 1e-5 wide spike)."""
    xt, nt, xc, nc = 1_002_000, 101_002_000, 1_000_000, 101_000_000
    normal = chance_to_beat(xt, nt, xc, nc, "normal")
    assert 0.9 < normal < 0.95
    assert chance_to_beat(xt, nt, xc, nc, "integral") == pytest.approx(normal, abs=1e-4)
    assert chance_to_beat(1_000, 10**8, 1_000, 10**8, "integral") == pytest.approx(0.5, abs=1e-9)
    with pytest.raises(ValueError):
        chance_to_beat(1, 2, 1, 2, "mcmc")


# ---- simulation ----------------------------------------------------------------------------------


def test_conversion_intervals_cover_the_true_difference_and_lift(monkeypatch: pytest.MonkeyPatch) -> None:
    no_chance(monkeypatch)
    rng = np.random.default_rng(11)
    pc, pt, n, runs = 0.10, 0.11, 5000, 400
    xs = zip(rng.binomial(n, pt, runs), rng.binomial(n, pc, runs), strict=True)
    results = [compare(Arm(1, n, int(xt)), Arm(0, n, int(xc)), 1) for xt, xc in xs]
    diff_cover = np.mean([c.diff_ci[0] <= pt - pc <= c.diff_ci[1] for c in results])
    lift_cover = np.mean([c.lift_ci[0] <= pt / pc - 1 <= c.lift_ci[1] for c in results])
    assert 0.93 <= diff_cover <= 0.97, diff_cover
    assert 0.93 <= lift_cover <= 0.97, lift_cover


def test_numeric_intervals_cover_the_true_difference_and_lift() -> None:
    """Skewed per-context values (exponential, as revenue is): Welch's interval and the delta-method lift."""
    rng = np.random.default_rng(12)
    mc, mt, n, runs = 10.0, 10.5, 2000, 400
    hits = []
    for _ in range(runs):
        t, c = moments(rng.exponential(mt, n)), moments(rng.exponential(mc, n))
        r = compare(Arm(1, n, n, t), Arm(0, n, n, c), 1)
        hits.append((r.diff_ci[0] <= mt - mc <= r.diff_ci[1], r.lift_ci[0] <= mt / mc - 1 <= r.lift_ci[1]))
    diff_cover, lift_cover = np.mean(hits, axis=0)
    assert 0.93 <= diff_cover <= 0.97, diff_cover
    assert 0.93 <= lift_cover <= 0.97, lift_cover


def peeking(runs: int, looks: int, draw: Any) -> tuple[float, float]:
    """Fraction of A/A experiments ever called significant by the fixed and by the sequential interval,
    looking at the cumulative data `looks` times. draw() gives one experiment's per-look Arms."""
    fixed = sequential = 0
    for _ in range(runs):
        seen = [compare(t, c, 1) for t, c in draw(looks)]
        fixed += any(not r.diff_ci[0] <= 0 <= r.diff_ci[1] for r in seen if r.diff_ci)
        sequential += any(not r.sequential_ci[0] <= 0 <= r.sequential_ci[1] for r in seen if r.sequential_ci)
    return fixed / runs, sequential / runs


def test_aa_with_30_looks_sequential_holds_alpha_and_fixed_does_not(monkeypatch: pytest.MonkeyPatch) -> None:
    no_chance(monkeypatch)
    rng = np.random.default_rng(5)
    batch, p = 400, 0.1

    def draw(looks: int) -> list[tuple[Arm, Arm]]:
        n = batch * np.arange(1, looks + 1)
        xt, xc = (np.cumsum(rng.binomial(batch, p, looks)) for _ in range(2))
        return [(Arm(1, int(k), int(a)), Arm(0, int(k), int(b))) for k, a, b in zip(n, xt, xc, strict=True)]

    fixed, sequential = peeking(500, 30, draw)
    assert sequential <= 0.05, sequential
    assert fixed > 0.08 and fixed > sequential, (fixed, sequential)


def test_aa_with_30_looks_on_a_numeric_metric() -> None:
    rng = np.random.default_rng(6)
    batch = 200

    def draw(looks: int) -> list[tuple[Arm, Arm]]:
        out, arms = [], [np.zeros(3), np.zeros(3)]
        for k in range(1, looks + 1):
            for acc in arms:
                v = rng.exponential(10, batch)
                acc += (batch, v.sum(), (v * v).sum())
            t, c = (Moments(int(a[0]), float(a[1]), float(a[2])) for a in arms)
            out.append((Arm(1, batch * k, batch * k, t), Arm(0, batch * k, batch * k, c)))
        return out

    fixed, sequential = peeking(400, 30, draw)
    assert sequential <= 0.05, sequential
    assert fixed > 0.08 and fixed > sequential, (fixed, sequential)


def test_srm_detects_a_tenth_of_one_arm_dropped_and_rarely_flags_a_fair_split() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    assigned = rng.binomial(2 * n, 0.5, 200)  # then a tenth of the second arm's exposures lost
    dropped = [sample_ratio([int(a), int(rng.binomial(2 * n - a, 0.9))], [50000, 50000]) for a in assigned]
    assert all(not s.ok and s.p_value < 0.001 for s in dropped)
    total = 2 * n
    fair = [sample_ratio([int(a), total - int(a)], [50000, 50000]) for a in rng.binomial(total, 0.5, 2000)]
    assert np.mean([s.ok for s in fair]) >= 0.99
    thirds = rng.multinomial(3 * n, [1 / 3] * 3, 1000)
    assert np.mean([sample_ratio(list(map(int, e)), [33333, 33333, 33334]).ok for e in thirds]) >= 0.99


# ---- edges and the report's shape ----------------------------------------------------------------


def finite_json(value: Any) -> None:
    """Only JSON types, floats finite and plain (not numpy), all the way down."""
    if isinstance(value, dict):
        for k, v in value.items():
            assert isinstance(k, str)
            finite_json(v)
    elif isinstance(value, list):
        for v in value:
            finite_json(v)
    elif isinstance(value, float):
        assert type(value) is float and math.isfinite(value)
    else:
        assert value is None or type(value) in (int, str, bool)


def checked(r: dict[str, Any]) -> dict[str, Any]:
    finite_json(r)
    assert orjson.loads(orjson.dumps(r)) == r
    json.dumps(r, allow_nan=False)  # raises on NaN or infinity
    return r


def test_report_shape() -> None:
    r = checked(
        report(
            "new-checkout",
            "purchase",
            [Arm(False, 10_000, 1000), Arm(True, 10_050, 1100)],
            [50000, 50000],
            excluded={"multiple_variations": 3},
        )
    )
    assert set(r) == {
        "flag",
        "metric",
        "control",
        "alpha",
        "verdict",
        "sequential",
        "variations",
        "comparisons",
        "srm",
        "excluded",
    }
    assert r["flag"] == "new-checkout" and r["metric"] == "purchase" and r["control"] == 0 and r["alpha"] == 0.05
    assert r["sequential"] == {"method": "msprt-normal-mixture", "tau": 0.05}
    assert r["excluded"] == {"multiple_variations": 3}
    assert [set(v) for v in r["variations"]] == [{"index", "value", "exposed", "converted", "rate", "rate_ci"}] * 2
    assert [v["value"] for v in r["variations"]] == [False, True]
    (c,) = r["comparisons"]
    assert set(c) == {
        "index",
        "diff",
        "diff_ci",
        "lift",
        "lift_ci",
        "p_value",
        "sequential_ci",
        "sequential_p_value",
        "chance_to_win",
    }
    assert c["index"] == 1 and c["diff"] == pytest.approx(1100 / 10050 - 0.1)
    assert c["p_value"] < 0.05  # significant at a single look ...
    assert c["sequential_ci"][0] < 0 < c["sequential_ci"][1]  # ... but not always-valid yet
    assert r["verdict"] == "no significant difference" and r["srm"]["ok"] is True
    assert c["chance_to_win"] == pytest.approx(miller_exact(1100, 10_050, 1000, 10_000), abs=1e-9)


def test_numeric_report_adds_means() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.exponential(10, 900), rng.exponential(10, 950)
    r = checked(report("f", "revenue", [Arm("a", 1000, 900, moments(x)), Arm("b", 1000, 950, moments(y))]))
    assert r["variations"][0]["mean"] == pytest.approx(x.mean()) and len(r["variations"][1]["mean_ci"]) == 2
    ref = sps.ttest_ind(y, x, equal_var=False)
    assert r["comparisons"][0]["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    assert r["comparisons"][0]["diff_ci"] == pytest.approx(list(ref.confidence_interval()), rel=1e-9)


def test_verdicts() -> None:
    big = 200_000
    better = report("f", "m", [Arm(0, big, 20_000), Arm(1, big, 21_500), Arm(2, big, 22_500)])
    assert better["verdict"] == "variation 2 better"
    worse = report("f", "m", [Arm(0, big, 20_000), Arm(1, big, 20_100), Arm(2, big, 18_000)])
    assert worse["verdict"] == "variation 2 worse"
    assert report("f", "m", [Arm(0, big, 20_000), Arm(1, big, 20_100)])["verdict"] == "no significant difference"
    srm = report("f", "m", [Arm(0, big, 20_000), Arm(1, big // 2, 12_000)])
    assert srm["verdict"] == "srm" and srm["srm"]["ok"] is False and srm["comparisons"][0]["diff"] is not None
    on_control_1 = report("f", "m", [Arm(0, big, 22_500), Arm(1, big, 20_000)], control=1)
    assert on_control_1["control"] == 1 and on_control_1["comparisons"][0]["index"] == 0
    assert on_control_1["verdict"] == "variation 0 better"


def test_zero_exposures() -> None:
    r = checked(report("f", "m", [Arm(0, 0, 0), Arm(1, 0, 0)]))
    assert [(v["rate"], v["rate_ci"]) for v in r["variations"]] == [(None, None)] * 2
    assert all(v is None for k, v in r["comparisons"][0].items() if k != "index")
    assert r["srm"] == {"p_value": None, "ok": True} and r["verdict"] == "insufficient data"


def test_zero_conversions_and_a_zero_control_rate() -> None:
    r = checked(report("f", "m", [Arm(0, 1000, 0), Arm(1, 1000, 0)]))
    assert r["variations"][0]["rate"] == 0.0 and r["variations"][0]["rate_ci"][0] == 0.0
    c = r["comparisons"][0]
    assert c["diff"] is None and c["p_value"] is None and c["lift"] is None and c["lift_ci"] is None
    assert c["chance_to_win"] == pytest.approx(0.5, abs=1e-12) and r["verdict"] == "insufficient data"
    c = checked(report("f", "m", [Arm(0, 1000, 0), Arm(1, 1000, 12)]))["comparisons"][0]
    assert c["diff"] == pytest.approx(0.012) and c["p_value"] is not None and c["lift"] is None and c["lift_ci"] is None


def test_all_converted() -> None:
    r = checked(report("f", "m", [Arm(0, 100, 100), Arm(1, 100, 100)]))
    assert r["variations"][1]["rate"] == 1.0 and r["variations"][1]["rate_ci"][1] == 1.0
    c = r["comparisons"][0]
    assert c["diff"] is None and c["lift"] == 0.0 and c["lift_ci"] is None and r["verdict"] == "insufficient data"


def test_one_variation_only() -> None:
    r = checked(report("f", "m", [Arm("only", 500, 50)], [100000]))
    assert r["comparisons"] == [] and r["srm"] == {"p_value": None, "ok": True} and r["verdict"] == "insufficient data"


def test_a_zero_weight_arm_leaves_the_degrees_of_freedom_and_any_exposure_in_it_is_a_mismatch() -> None:
    r = checked(report("f", "m", [Arm(0, 1000, 100), Arm(1, 1040, 110), Arm(2, 0, 0)], [50000, 50000, 0]))
    assert r["srm"]["p_value"] == pytest.approx(sps.chisquare([1000, 1040]).pvalue, rel=1e-12)
    assert r["comparisons"][1]["diff"] is None and r["verdict"] == "no significant difference"
    r = checked(report("f", "m", [Arm(0, 1000, 100), Arm(1, 1040, 110), Arm(2, 1, 0)], [50000, 50000, 0]))
    assert r["srm"] == {"p_value": 0.0, "ok": False} and r["verdict"] == "srm"


def test_numeric_edges_are_none_not_nan() -> None:
    r = checked(report("f", "m", [Arm(0, 10, 1, Moments(1, 5.0, 25.0)), Arm(1, 10, 0, Moments(0, 0.0, 0.0))]))
    assert r["variations"][0]["mean"] == 5.0 and r["variations"][0]["mean_ci"] is None
    assert r["variations"][1]["mean"] is None and all(v is None for k, v in r["comparisons"][0].items() if k != "index")
    zero_control = Moments(3, 0.0, 0.0)  # mean 0 and no variance: lift undefined, diff defined by the other arm
    c = checked(report("f", "m", [Arm(0, 3, 3, zero_control), Arm(1, 3, 3, Moments(3, 3.0, 5.0))]))["comparisons"][0]
    assert c["lift"] is None and c["diff"] == pytest.approx(1.0) and c["p_value"] is not None
    same = Moments(4, 8.0, 16.0)  # both constant: no variance, no test
    c = checked(report("f", "m", [Arm(0, 4, 4, same), Arm(1, 4, 4, same)]))["comparisons"][0]
    assert c["diff"] is None and c["lift"] == 0.0 and c["lift_ci"] is None


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError):
        report("f", "m", [Arm(0, 10, 11), Arm(1, 10, 1)])
    with pytest.raises(ValueError):
        report("f", "m", [Arm(0, 10, 1, Moments(1, 1.0, 1.0)), Arm(1, 10, 1)])
    with pytest.raises(ValueError):
        report("f", "m", [Arm(0, 10, 1)], control=1)
    with pytest.raises(ValueError):
        report("f", "m", [Arm(0, 10, 1), Arm(1, 10, 1)], [1, -1])
    with pytest.raises(ValueError):
        report("f", "m", [Arm(0, 10, 1), Arm(1, 10, 1)], [0, 0])


def test_overflowing_input_comes_out_as_none_not_infinity() -> None:
    huge = Moments(2, 1e308, 1e308 * 10)  # a sum of squares past float range
    r = checked(report("f", "m", [Arm(0, 2, 2, huge), Arm(1, 2, 2, Moments(2, 1e308, 1e308))]))
    assert r["variations"][0]["mean"] == 5e307 and r["variations"][0]["mean_ci"] is None


@st.composite
def arms(draw: st.DrawFn) -> tuple[list[Arm], list[int]]:
    numeric = draw(st.booleans())
    out = []
    for i in range(draw(st.integers(1, 4))):
        exposed = draw(st.integers(0, 10**9) | st.integers(0, 20))
        converted = draw(st.integers(0, exposed))
        m = None
        if numeric:
            count = draw(st.integers(0, 10**6) | st.integers(0, 3))
            total = draw(st.floats(-1e300, 1e300) | st.floats(-100, 100))
            m = Moments(count, total, draw(st.floats(0, 1e300) | st.floats(0, 1e4)))
        out.append(Arm(i, exposed, converted, m))
    weights = draw(st.lists(st.integers(0, 100_000), min_size=len(out), max_size=len(out)).filter(any))
    return out, weights


@settings(max_examples=300, deadline=None)
@given(arms())
def test_any_counts_give_finite_json(case: tuple[list[Arm], list[int]]) -> None:
    """Whatever the counts, sums and weights, no exception, and nothing but finite JSON comes out."""
    r = checked(report("f", "m", case[0], case[1]))
    assert r["verdict"] in {"srm", "insufficient data", "no significant difference"} or r["verdict"].startswith(
        "variation "
    )
    for c in r["comparisons"]:
        assert c["chance_to_win"] is None or 0 <= c["chance_to_win"] <= 1
        assert c["p_value"] is None or 0 <= c["p_value"] <= 1
