"""Result objects: sums, per-cell lookup, and conversion to pandas / xarray."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import chiralnet as cn


@pytest.fixture(scope="module")
def chain_run():
    G = cn.chain(4, n_th=0.05)
    G.nodes[2]["battery"] = False                   # battery cells: 1 and 3
    t = np.linspace(0, 500, 11)
    return G, cn.simulate(G, t), cn.steady_state(G)


def test_simulation_sums(chain_run):
    G, res, _ = chain_run
    assert res.cells == (0, 1, 2, 3)
    assert res.battery.tolist() == [False, True, False, True]
    assert res.energies.shape == res.amplitudes.shape == res.fluctuations.shape == (11, 4)
    assert res.total_energy.shape == res.battery_energy.shape == (11,)
    np.testing.assert_allclose(res.total_energy, res.energies.sum(axis=1), rtol=1e-15)
    np.testing.assert_allclose(res.battery_energy, res.energies[:, 1] + res.energies[:, 3], rtol=1e-15)
    # E_i = omega_i (|alpha_i|^2 + Nc_ii), omega = 1 here.
    np.testing.assert_allclose(res.energies, np.abs(res.amplitudes) ** 2 + res.fluctuations, rtol=1e-14)
    assert np.all(res.fluctuations[1:] > 0)         # the baths are hot (t = 0 starts from vacuum)
    assert res.final_state.Nc.shape == (4, 4) and res.final_state.time == res.times[-1]
    np.testing.assert_allclose(res.final_state.Nc.diagonal().real, res.fluctuations[-1], rtol=1e-14)


def test_steady_sums(chain_run):
    _, _, ss = chain_run
    assert ss.energies.shape == ss.amplitudes.shape == (4,)
    assert isinstance(ss.total_energy, float) and isinstance(ss.battery_energy, float)
    assert ss.total_energy == pytest.approx(ss.energies.sum(), rel=1e-15)
    assert ss.battery_energy == pytest.approx(ss.energies[1] + ss.energies[3], rel=1e-15)


def test_energy_lookup(chain_run):
    _, res, ss = chain_run
    np.testing.assert_array_equal(res.energy(3), res.energies[:, 3])
    assert ss.energy(3) == ss.energies[3]
    for obj in (res, ss):
        with pytest.raises(cn.ChiralnetError, match="'nope'"):
            obj.energy("nope")
        with pytest.raises(cn.ChiralnetError, match="7"):
            obj.energy(7)


def test_to_dataframe(chain_run):
    _, res, _ = chain_run
    df = res.to_dataframe()
    assert isinstance(df, pd.DataFrame)
    assert df.shape == (11, 4) and list(df.columns) == [0, 1, 2, 3]
    np.testing.assert_array_equal(df.index.to_numpy(), res.times)
    np.testing.assert_array_equal(df.to_numpy(), res.energies)


def test_to_xarray(chain_run):
    _, res, _ = chain_run
    ds = res.to_xarray()
    assert isinstance(ds, xr.Dataset)
    assert ds["energy"].dims == ("time", "cell") and ds["energy"].shape == (11, 4)
    assert ds["amplitude"].shape == ds["fluctuation"].shape == (11, 4)
    assert ds.sizes == {"time": 11, "cell": 4}
    np.testing.assert_array_equal(ds["energy"].sel(cell="3").to_numpy(), res.energy(3))
    assert ds.attrs["method"] == res.method


def test_to_xarray_refuses_cells_with_the_same_label():
    G = cn.network()
    cn.add_cell(G, 1, omega=1.0, kappa=0.1, drive=0.1)
    cn.add_cell(G, "1", omega=1.0, kappa=0.1)
    res = cn.simulate(G, [0.0, 1.0])
    with pytest.raises(cn.ChiralnetError, match="share a label"):
        res.to_xarray()


def test_results_are_frozen(chain_run):
    _, res, ss = chain_run
    with pytest.raises(AttributeError):
        res.method = "x"
    with pytest.raises(AttributeError):
        ss.method = "x"


def test_zero_temperature_has_no_fluctuations():
    res = cn.simulate(cn.two_cell(), [0.0, 10.0])
    assert np.all(res.fluctuations == 0) and res.final_state.Nc is None
    assert cn.steady_state(cn.two_cell()).state.Nc is None


def test_fast_result_construction_matches_the_dataclass():
    """simulation_result builds its SimulationResult without the dataclass __init__: the same attributes, every
    field set, energies stored where the descriptor keeps them (and derived on access when None)."""
    import dataclasses

    from chiralnet.results import SimulationResult, _new_result

    res = cn.simulate(cn.two_cell(), np.linspace(0, 100, 5))
    fields = {f.name: getattr(res, f.name) for f in dataclasses.fields(SimulationResult)}
    fields["energies"] = None  # derived from the amplitudes on access
    slow = SimulationResult(**fields)
    fast = _new_result({("_energies" if k == "energies" else k): v for k, v in fields.items()})
    assert slow.__dict__.keys() == fast.__dict__.keys()
    assert all(slow.__dict__[k] is fast.__dict__[k] for k in slow.__dict__ if k != "_energies")
    np.testing.assert_array_equal(fast.energies, slow.energies)
    assert set(res.__dict__) == set(slow.__dict__) | {"_energies"}
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.method = "x"


def test_fast_steady_state_and_model_construction_match_the_dataclasses():
    """steady_state and assemble_model build their frozen dataclasses from a dict, without __init__: every field
    set (a field added to the class and not to the dict fails here), the same values, still frozen."""
    import dataclasses

    from chiralnet.model import Model

    ss = cn.steady_state(cn.two_cell(n_th=0.1))
    model = cn.build_model(cn.two_cell(n_th=0.1))
    for obj, cls in ((ss, cn.SteadyState), (model, Model)):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(cls)}
        slow = cls(**fields)
        assert set(obj.__dict__) - {"forcing"} == set(slow.__dict__) == set(fields)
        assert all(obj.__dict__[k] is slow.__dict__[k] for k in fields)
        with pytest.raises(dataclasses.FrozenInstanceError):
            obj.cells = ()
