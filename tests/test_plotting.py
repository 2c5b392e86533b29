"""Figures (chiralnet.plotting): produced, non-empty PNG images; link directions read from M."""

import struct

import numpy as np
import pytest
from matplotlib.figure import Figure

import chiralnet as cn
from chiralnet import plotting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) of a PNG file, after checking its signature and IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def chain_run():
    G = cn.chain(5)
    return G, cn.simulate(G, np.linspace(0, 1500, 61)), cn.steady_state(G)


def _check_png(fig, path, min_bytes=5000):
    assert isinstance(fig, Figure)
    plotting.save_figure(fig, path, dpi=60)
    width, height = png_size(path)
    assert width > 100 and height > 100 and path.stat().st_size > min_bytes
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_energy_heatmap_profile(tmp_path, chain_run):
    G, res, ss = chain_run
    _check_png(plotting.plot_energies(res, title="chain"), tmp_path / "energy.png")
    _check_png(plotting.plot_heatmap(res), tmp_path / "heatmap.png")
    _check_png(plotting.plot_profile(ss, result=res), tmp_path / "profile.png")


def test_axis_labels_carry_units(chain_run):
    G, res, ss = chain_run
    ax = plotting.plot_energies(res).axes[0]
    assert r"1/\omega" in ax.get_xlabel() and r"\hbar\omega" in ax.get_ylabel()
    ax = plotting.plot_heatmap(res).axes[0]
    assert r"1/\omega" in ax.get_xlabel()


def test_energy_plot_draws_each_cell_and_totals(chain_run):
    G, res, ss = chain_run
    ax = plotting.plot_energies(res).axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == [f"cell {i}" for i in range(5)] + ["battery total", "total"]
    np.testing.assert_array_equal(ax.get_lines()[-2].get_ydata(), res.battery_energy)


@pytest.mark.parametrize("make", [lambda: cn.chain(6), lambda: cn.ring(5), lambda: cn.star(4),
                                  lambda: cn.lattice(3, 3), lambda: cn.two_cell(nonreciprocal=False)],
                         ids=["chain", "ring", "star", "lattice", "reciprocal"])
def test_network_figure(tmp_path, make):
    G = make()
    _check_png(plotting.plot_network(G, cn.steady_state(G).energies), tmp_path / "network.png")


def test_network_figure_arrows_follow_model():
    G = cn.chain(4)
    fig = plotting.plot_network(G, cn.steady_state(G).energies)
    from matplotlib.patches import FancyArrowPatch

    arrows = [p for p in fig.axes[0].patches if isinstance(p, FancyArrowPatch)]
    assert len(arrows) == 3


def test_link_directions_from_model():
    assert plotting.link_directions(cn.chain(4)) == ([(0, 1), (1, 2), (2, 3)], [])
    assert plotting.link_directions(cn.chain(3, nonreciprocal=False)) == ([], [(0, 1), (1, 2)])
    ring = plotting.link_directions(cn.ring(3))[0]
    assert sorted(ring) == [(0, 1), (1, 2), (2, 0)]


def test_direction_comes_from_M_not_metadata():
    """J = +i mu Gamma/2 instead of -i mu Gamma/2 reverses the link although the edge still reads a -> b."""
    def pair(J):
        G = cn.network()
        cn.add_cell(G, "a", omega=1.0, kappa=0.003, drive=0.1)
        cn.add_cell(G, "b", omega=1.0, kappa=0.003)
        cn.add_reservoir(G, {"a": 1.0, "b": -1.0}, gamma=0.04)  # mu = -p_b conj(p_a) = 1
        cn.add_coherent_link(G, "a", "b", J)
        return G

    assert plotting.link_directions(pair(-0.02j)) == ([("a", "b")], [])
    assert plotting.link_directions(pair(+0.02j)) == ([("b", "a")], [])
    assert plotting.link_directions(pair(0.02)) == ([], [("a", "b")])


def test_eta_vs_cooperativity(tmp_path):
    from chiralnet import analytic

    C = np.logspace(-2, 2, 50)
    fig = plotting.plot_eta_vs_cooperativity(C, {"Eq. (12)": analytic.eta_bb_opt_balanced(C)},
                                             points={"simulated": (C[::10], analytic.eta_bb_opt_balanced(C[::10]))})
    assert "cooperativity" in fig.axes[0].get_xlabel()
    _check_png(fig, tmp_path / "eta.png")


def test_pdf_by_suffix(tmp_path, chain_run):
    G, res, ss = chain_run
    plotting.save_figure(plotting.plot_profile(ss), tmp_path / "profile.pdf")
    assert (tmp_path / "profile.pdf").read_bytes()[:5] == b"%PDF-"


def test_sweep_figure_one_panel_per_quantity_with_units(tmp_path):
    """The sweep figure drew only the first quantity, with bare parameter names on the axes."""
    from chiralnet.sweeps import sweep

    res = sweep("two_cell", {"gamma": [0.01, 0.02, 0.04], "kappa_b": [0.001, 0.003]},
                ["battery_energy", "time_to_90", "ratio_reciprocal"])
    fig = res.plot_all()
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_label() != "<colorbar>"]
    assert len(panels) == 3
    assert [ax.get_ylabel() for ax in panels] == ["battery_energy (omega)", "time_to_90 (1/omega)",
                                                  "ratio_reciprocal (dimensionless)"]
    assert {ax.get_xlabel() for ax in panels} == {"gamma (omega)"}
    assert panels[0].get_legend().get_texts()[0].get_text() == "kappa_b = 0.001 omega"
    res.save_figure(tmp_path / "f.png")  # the file of `chiralnet sweep` is this figure
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a two-float map puts the quantity and its unit on the colorbar
    grid = sweep("two_cell", {"gamma": np.linspace(0.01, 0.05, 8), "kappa_b": np.linspace(0.001, 0.01, 7)})
    fig = grid.plot_all()
    assert fig.axes[0].get_ylabel() == "kappa_b (omega)"
    assert fig.axes[1].get_ylabel() == "battery_energy (omega)"  # the colorbar


def test_optimization_figure_plots_the_optimised_link_values():
    from chiralnet.plotting.design import plot_optimization

    res = cn.optimize("chain", {"gamma": (0.005, 0.2)}, "battery_energy", params={"n_cells": 5, "drive": 0.1},
                      budget={"gamma": 0.16}, maxiter=30)
    fig = plot_optimization(res, objective="battery_energy", builder="chain", bounds={"gamma": (0.005, 0.2)})
    objective, links = fig.axes
    assert objective.get_ylabel() == "battery_energy (omega)" and objective.get_xlabel() == "iteration"
    assert links.get_ylabel() == "gamma (omega)" and links.get_xlabel() == "link index"
    start, best = links.get_lines()[:2]
    np.testing.assert_array_equal(best.get_ydata(), res.x["gamma"])  # one point per link, the optimum
    np.testing.assert_array_equal(start.get_ydata(), res.x0["gamma"])
    assert len(best.get_ydata()) == 4
