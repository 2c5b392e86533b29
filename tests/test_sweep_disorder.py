"""Disorder ensembles in sweeps: statistics against a plain loop over the same draws, reproducibility across
chunking, resume and processes, spread 0, the per-realisation path, outputs, and bad input."""

import json
import os

import numpy as np
import pytest

import chiralnet as cn
from chiralnet import cli
from chiralnet.sweeps import SweepError, load_sweep, make_plan, make_spec, run_sweep, sweep
from chiralnet.sweeps import disorder as dis

#: Statistics of the batched kernels against a loop of cn.steady_state on the same realisations
#: (2..6-cell chains: LU of the batched kernel vs forward substitution), relative to the mean.
STAT_RTOL = 1e-13
#: Batched vs per-realisation (steady_state) path and against exact propagation, relative.
RTOL_STEADY = 1e-12
RTOL_PROPAGATION = 1e-9
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _draws(seed, point, R, sizes, spreads, distribution="normal"):
    """The documented contract, from NumPy alone: point p's stream, realisation r its r-th row."""
    gen = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(point,))))
    s = np.repeat(spreads, sizes)
    if distribution == "uniform":
        return 1 + s * (np.sqrt(3) * (2 * gen.random((R, sum(sizes))) - 1))
    x = gen.standard_normal((R, sum(sizes)))
    if distribution == "lognormal":
        sig = np.sqrt(np.log1p(s * s))
        return np.exp(sig * x - 0.5 * sig * sig)
    return 1 + s * x


def _stats(x, quantiles=(0.05, 0.5, 0.95)):
    return np.concatenate([[x.mean(), x.std(ddof=1)], np.quantile(x, quantiles)])


def _assert_stats(got, ref):
    scale = abs(ref[0])
    np.testing.assert_allclose(got, ref, rtol=0, atol=STAT_RTOL * scale)


@pytest.mark.parametrize("distribution", ["normal", "uniform", "lognormal"])
def test_statistics_equal_a_plain_loop_over_the_same_draws(distribution):
    R, seed, spreads = 40, 7, {"kappa": 0.1, "gamma": 0.05}
    grid = {"n_cells": [3, 5], "nonreciprocal": [True, False]}
    res = sweep("chain", grid, ["battery_energy", "total_energy"], disorder=spreads, realisations=R, seed=seed,
                distribution=distribution, keep_realisations=True)
    assert res["battery_energy"].shape == (2, 2, 5) and res.coords["stat"] == ["mean", "std", "q5", "q50", "q95"]
    assert res.attrs["batched_groups"] == 4
    for p, (i, j) in enumerate(np.ndindex(2, 2)):
        n, nr = grid["n_cells"][i], grid["nonreciprocal"][j]
        f = _draws(seed, p, R, [n, n - 1], [0.1, 0.05], distribution)
        d = dis.make_disorder(spreads, realisations=R, seed=seed, distribution=distribution)
        np.testing.assert_array_equal(f, dis.factors(d, p, [n, n - 1]))  # the same draws, bitwise
        eb, et = np.empty(R), np.empty(R)
        for r in range(R):
            ss = cn.steady_state(cn.chain(n, kappa=0.003 * f[r, :n], gamma=0.04 * f[r, n:], nonreciprocal=nr))
            eb[r], et[r] = ss.battery_energy, ss.total_energy
        _assert_stats(res["battery_energy"][i, j], _stats(eb))
        _assert_stats(res["total_energy"][i, j], _stats(et))
        np.testing.assert_allclose(res.realisations["battery_energy"][i, j], eb, rtol=STAT_RTOL)
    np.testing.assert_array_equal(res.stat("battery_energy", "q50"), res["battery_energy"][..., 3])


def test_cell_time_and_ratio_quantities_per_realisation():
    R, times = 6, [0.0, 100.0, 800.0]
    q = ["cell_energy", "battery_energy_at", "ratio_nonreciprocal", "time_to_90"]
    res = sweep("chain", {"gamma": [0.03, 0.05]}, q, params={"n_cells": 4}, times=times,
                disorder={"kappa": 0.1, "gamma": 0.1, "omega": 0.001}, realisations=R, seed=3, keep_realisations=True)
    assert res["cell_energy"].shape == (2, 4, 5) and res["battery_energy_at"].shape == (2, 3, 5)
    assert res.realisations["cell_energy"].shape == (2, 4, R)
    for p, g in enumerate([0.03, 0.05]):
        f = _draws(3, p, R, [4, 3, 4], [0.1, 0.1, 0.001])
        lim = cn.observables.two_cell_limits(omega=1.0, E=0.1, kappa_a=0.003, kappa_b=0.003, gamma=g)[0]
        for r in range(R):
            G = cn.chain(4, kappa=0.003 * f[r, :4], gamma=g * f[r, 4:7], omega=f[r, 7:])
            ss = cn.steady_state(G)
            np.testing.assert_allclose(res.realisations["cell_energy"][p, :, r], ss.energies, rtol=RTOL_STEADY)
            assert res.realisations["ratio_nonreciprocal"][p, r] == pytest.approx(ss.battery_energy / lim,
                                                                                  rel=RTOL_STEADY)
            at = cn.simulate(G, times, method="exact").battery_energy
            np.testing.assert_allclose(res.realisations["battery_energy_at"][p, :, r], at, rtol=0,
                                       atol=RTOL_PROPAGATION * ss.battery_energy)
            t90 = res.realisations["time_to_90"][p, r]
            assert cn.simulate(G, [t90], method="exact").battery_energy[0] == pytest.approx(
                0.9 * ss.battery_energy, rel=1e-8)
        x = res.realisations["cell_energy"][p]
        np.testing.assert_allclose(res["cell_energy"][p, :, 0], x.mean(axis=-1), rtol=STAT_RTOL)


def test_spread_zero_gives_the_nominal_value_exactly():
    grid = {"n_cells": [2, 4, 7], "nonreciprocal": [True, False]}
    plain = sweep("chain", grid, ["battery_energy", "cell_energy"][:1])
    for distribution in ("normal", "lognormal", "uniform"):
        res = sweep("chain", grid, ["battery_energy"], disorder={"kappa": 0.0, "gamma": 0.0}, realisations=7,
                    seed=1, distribution=distribution)
        e = res["battery_energy"]
        np.testing.assert_array_equal(e[..., 0], plain["battery_energy"])   # the same model, the same kernel
        assert np.all(e[..., 1] == 0.0)
        np.testing.assert_array_equal(e[..., 2:], np.repeat(e[..., :1], 3, axis=-1))
    assert dis.factors(dis.make_disorder({"kappa": 0.0}, realisations=5, seed=2), 0, [3]).tolist() == [[1.0] * 3] * 5


def test_reproducible_across_chunks_resume_and_pool(tmp_path):
    grid = {"n_cells": [3, 6], "gamma": [0.02, 0.04, 0.06]}
    kw = dict(disorder={"kappa": 0.05, "gamma": 0.05}, realisations=30, seed=11, keep_realisations=True)
    ref = sweep("chain", grid, ["battery_energy", "cell_energy"][:1], **kw)
    one = sweep("chain", grid, ["battery_energy"], chunk_size=1, **kw)
    out = tmp_path / "s"
    stored = sweep("chain", grid, ["battery_energy"], chunk_size=2, out=out, **kw)
    os.unlink(out / "chunks" / "c00000001.npz")
    resumed = sweep("chain", grid, ["battery_energy"], chunk_size=2, out=out, resume=True, **kw)
    assert resumed.attrs["computed_chunks"] == 1 and resumed.attrs["reused_chunks"] == 2
    for r in (one, stored, resumed):
        np.testing.assert_array_equal(r["battery_energy"], ref["battery_energy"])
        np.testing.assert_array_equal(r.realisations["battery_energy"], ref.realisations["battery_energy"])
    # one model per realisation (steady_state), in this process and on a pool of 2 spawned workers
    single = sweep("chain", grid, ["battery_energy"], batched=False, processes=1, chunk_size=2, **kw)
    pool = sweep("chain", grid, ["battery_energy"], batched=False, processes=2, chunk_size=2, **kw)
    assert (single.attrs["engine"], pool.attrs["engine"]) == ("in-process", "local-pool")
    np.testing.assert_array_equal(pool["battery_energy"], single["battery_energy"])
    np.testing.assert_allclose(single["battery_energy"], ref["battery_energy"], rtol=0,
                               atol=RTOL_STEADY * np.abs(ref["battery_energy"][..., :1]).max())


def test_dask_equals_embedded():
    distributed = pytest.importorskip("distributed")
    spec = make_spec("chain", {"n_cells": [3, 5], "gamma": [0.03, 0.05]}, ["battery_energy"], run={"chunk_size": 1},
                     disorder={"kappa": 0.05, "gamma": 0.05, "realisations": 20, "seed": 5})
    embedded = run_sweep(spec)
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                       dashboard_address=None)
    try:
        with distributed.Client(cluster) as client:
            on_dask = run_sweep(spec, client=client)
    finally:
        cluster.close()
    assert on_dask.attrs["engine"] == "dask"
    np.testing.assert_array_equal(on_dask["battery_energy"], embedded["battery_energy"])


def test_large_and_thermal_networks_build_each_realisation():
    R = 4
    res = sweep("chain", {"n_cells": [70]}, ["battery_energy"], disorder={"kappa": 0.05, "gamma": 0.05},
                realisations=R, seed=2, keep_realisations=True)
    assert res.attrs["batched_groups"] == 0
    f = _draws(2, 0, R, [70, 69], [0.05, 0.05])
    ref = [cn.steady_state(cn.chain(70, kappa=0.003 * f[r, :70], gamma=0.04 * f[r, 70:])).battery_energy
           for r in range(R)]
    np.testing.assert_allclose(res.realisations["battery_energy"][0], ref, rtol=RTOL_STEADY)
    # thermal: n_th disorders the local baths; the link reservoirs keep the nominal occupation
    res = sweep("chain", {"gamma": [0.04]}, ["battery_energy"], params={"n_cells": 3, "n_th": 0.2},
                disorder={"n_th": 0.1}, realisations=R, seed=4, keep_realisations=True)
    f = _draws(4, 0, R, [3], [0.1])
    ref = [cn.steady_state(cn.chain(3, n_th=0.2 * f[r], n_th_link=0.2)).battery_energy for r in range(R)]
    np.testing.assert_allclose(res.realisations["battery_energy"][0], ref, rtol=RTOL_STEADY)


def test_a_realisation_without_steady_state_is_flagged_not_averaged():
    # no local damping and coherent links: no steady state; with one-way links the same chain is fine
    with pytest.warns(RuntimeWarning, match="have a realisation with no steady state"):
        res = sweep("chain", {"nonreciprocal": [True, False]}, ["battery_energy"], params={"n_cells": 3, "kappa": 0.0},
                    disorder={"gamma": 0.05}, realisations=5)
    assert res.status.tolist() == [0, 1]
    assert np.isfinite(res["battery_energy"][0]).all() and np.isnan(res["battery_energy"][1]).all()


def test_batched_assembly_equals_the_array_builder():
    from chiralnet.arrays import model_from_layout

    spec = make_spec("lattice", {"J": [0.02, 0.05]}, params={"rows": 2, "cols": 3, "nonreciprocal": False,
                                                            "drive": 0.1 + 0.05j},
                     disorder={"omega": 0.01, "kappa": 0.1, "J": 0.1, "drive": 0.1, "realisations": 3})
    plan = make_plan(spec)
    for g in plan.groups.values():
        assert g.batched, g.reason
        gd = g.disorder
        lay, options = dis.nominal("lattice", plan.point_kwargs(np.array([1]))[1])
        sizes = dis.sizes_of(lay, gd.names)
        theta = dis.theta_of(lay, gd.names)
        f = dis.factors(spec.disorder, 1, sizes)
        m0 = model_from_layout(lay, sparse=False)
        M, b, w = dis.assemble(gd, m0.M[None], m0.forcing[None], m0.omega[None], theta * f - theta)
        for r in range(3):
            ref = model_from_layout(dis.realised_layout("lattice", lay, options, gd.names,
                                                        dis.split(theta * f[r], gd.names, sizes)), sparse=False)
            np.testing.assert_allclose(M[r], ref.M, rtol=0, atol=1e-16)
            np.testing.assert_allclose(b[r], ref.forcing, rtol=0, atol=1e-16)
            np.testing.assert_allclose(w[r], ref.omega, rtol=0, atol=1e-16)


def test_outputs_carry_the_statistics(tmp_path):
    xr = pytest.importorskip("xarray")
    res = sweep("chain", {"gamma": [0.03, 0.05]}, ["battery_energy", "cell_energy"], params={"n_cells": 3},
                disorder={"kappa": 0.05}, realisations=10, seed=1, quantiles=[0.025, 0.975], keep_realisations=True,
                out=tmp_path / "o")
    assert res.coords["stat"] == ["mean", "std", "q2.5", "q97.5"]
    header = (tmp_path / "o" / "result.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["gamma", "battery_energy[mean]", "battery_energy[std]", "battery_energy[q2.5]",
                          "battery_energy[q97.5]", "cell_energy[0][mean]"]
    ds = xr.load_dataset(tmp_path / "o" / "result.nc")
    assert ds["battery_energy"].dims == ("gamma", "stat") and list(ds["stat"].values) == res.coords["stat"]
    assert ds["cell_energy_realisations"].dims == ("gamma", "cell", "realisation")
    np.testing.assert_array_equal(ds["battery_energy"].sel(stat="q97.5").values, res.stat("battery_energy", "q97.5"))
    assert json.loads(ds.attrs["disorder"])["seed"] == 1
    assert (tmp_path / "o" / "figure.png").read_bytes()[:4] == b"\x89PNG"


def test_sweep_file_with_disorder_section(tmp_path, capsys):
    path = tmp_path / "d.sweep.toml"
    path.write_text('[base]\nbuilder = "chain"\nn_cells = 4\n[grid]\ngamma = [0.03, 0.05]\n'
                    '[disorder]\nkappa = 0.05\ngamma = 0.02\nrealisations = 20\nseed = 3\ndistribution = "lognormal"\n'
                    'quantiles = [0.1, 0.9]\n')
    spec = load_sweep(path)
    assert spec.disorder.spreads == {"kappa": 0.05, "gamma": 0.02} and spec.disorder.distribution == "lognormal"
    assert spec.to_json()["disorder"]["realisations"] == 20
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "2 points over gamma (2), 20 disorder realisations each;" in capsys.readouterr().out
    header = (tmp_path / "o" / "result.csv").read_text().splitlines()[0]
    assert header == "gamma,battery_energy[mean],battery_energy[std],battery_energy[q10],battery_energy[q90],status"


BAD = [
    ({"kapa": 0.1}, {}, "kapa"),
    ({"kappa": -0.1}, {}, "kappa = -0.1"),
    ({"kappa": float("nan")}, {}, "kappa = nan"),
    ({"kappa": float("inf")}, {}, "kappa = inf"),
    ({"kappa": "5%"}, {}, "kappa"),
    ({}, {}, "at least one parameter"),
    ({"kappa": 0.1}, {"realisations": 0}, "realisations must be an integer >= 1"),
    ({"kappa": 0.1}, {"realisations": 2.5}, "realisations must be an integer >= 1"),
    ({"kappa": 0.1}, {"realisations": True}, "realisations must be an integer >= 1"),
    ({"kappa": 0.1}, {"realisations": 2**31}, "realisations = 2147483648 is more than"),
    ({"kappa": 0.1}, {"keep_realisations": 1}, "keep_realisations must be true or false"),
    ({"kappa": 0.1}, {"seed": -1}, "seed"),
    ({"kappa": 0.1}, {"distribution": "gauss"}, "distribution"),
    ({"kappa": 0.1}, {"quantiles": [0.9, 0.1]}, "quantiles"),
    ({"kappa": 0.1}, {"quantiles": [1.5]}, "quantiles"),
    ({"drive_frequency": 0.1}, {}, "'drive_frequency' as one value"),
    ({"n_cells": 0.1}, {}, "'n_cells' as one value"),
    ({"nonreciprocal": 0.1}, {}, "'nonreciprocal' as one value"),
    ({"kappa": 0.6}, {"distribution": "uniform"}, "kappa = 0.6.*uniform"),
    ({"gamma": 0.3}, {}, "gamma = 0.3.*lognormal"),
    ({"J": 0.1}, {}, "J"),
]


@pytest.mark.parametrize("spreads, options, match", BAD)
def test_bad_disorder_is_a_sweep_error_naming_it(spreads, options, match):
    with pytest.raises(SweepError, match=match):
        sweep("chain", {"gamma": [0.03, 0.04] * 1, "n_cells": [4, 40]}, ["battery_energy", "cell_energy"][:1],
              disorder=spreads, **{"realisations": 100, **options})


def test_too_many_realisations_for_memory(monkeypatch):
    from chiralnet import config

    monkeypatch.setattr(config, "MEMORY_LIMIT_GB", 0.01)
    with pytest.raises(SweepError, match=r"\[disorder\]: 200000 realisations .* to fit: fewer realisations"):
        sweep("chain", {"gamma": [0.03]}, ["cell_energy"], params={"n_cells": 4}, disorder={"kappa": 0.1},
              realisations=200_000)
    with pytest.raises(SweepError, match="keep_realisations = false"):
        sweep("chain", {"gamma": np.linspace(0.01, 0.05, 100)}, params={"n_cells": 4}, disorder={"kappa": 0.1},
              realisations=20_000, keep_realisations=True)


def test_builders_without_per_cell_parameters_are_refused():
    with pytest.raises(SweepError, match="'kappa_a' as one value.*chain with n_cells = 2"):
        sweep("two_cell", {"gamma": [0.03]}, disorder={"kappa_a": 0.1})

    def mine(gamma=0.04):
        return cn.chain(3, gamma=gamma)

    with pytest.raises(SweepError, match="registered builder"):
        sweep(mine, {"gamma": [0.03]}, disorder={"gamma": 0.1})
    with pytest.raises(SweepError, match="n_th_link.*nonreciprocal"):
        sweep("chain", {"gamma": [0.03]}, params={"n_cells": 3, "nonreciprocal": False}, disorder={"n_th_link": 0.1})


def test_a_draw_that_would_make_a_rate_negative_stops_the_sweep(monkeypatch):
    monkeypatch.setattr(cn.config, "DISORDER_MAX_EXPECTED_NONPOSITIVE", float("inf"))  # past the preflight odds
    with pytest.raises(SweepError, match=r"gamma=0.04.*realisation \d+.*kappa.*factor -?[\d.e-]+ <= 0.*lognormal"):
        sweep("chain", {"gamma": [0.04]}, params={"n_cells": 4}, disorder={"kappa": 0.6}, realisations=200, seed=1)
    # lognormal never does, and keeps mean and spread
    res = sweep("chain", {"gamma": [0.04]}, params={"n_cells": 4}, disorder={"kappa": 0.6}, realisations=200,
                seed=1, distribution="lognormal")
    assert np.isfinite(res["battery_energy"]).all()


def test_cli_bad_disorder_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.sweep.toml"
    path.write_text('[base]\nbuilder = "chain"\nn_cells = 4\n[grid]\ngamma = [0.03]\n[disorder]\nkapa = 0.05\n')
    assert cli.main(["sweep", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kapa" in err and str(path) in err
    assert not (tmp_path / "o").exists()


def test_example_disorder_sweep_file_parses():
    spec = load_sweep(os.path.join(ROOT, "examples", "chain_disorder.sweep.toml"))
    assert spec.disorder is not None and spec.disorder.realisations >= 100
