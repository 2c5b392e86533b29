"""Hypothesis strategies: random networks that follow the chiralnet schema."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import chiralnet as cn


def _complex(max_abs, min_abs=0.0):
    return st.builds(
        lambda r, phi: complex(r * np.cos(phi), r * np.sin(phi)),
        st.floats(min_abs, max_abs), st.floats(0.0, 2 * np.pi),
    )


@st.composite
def networks(draw, *, min_cells=1, max_cells=6, damped=True, thermal=None, initial=True, max_res=None):
    """A random network of 1..6 cells.

    Cells: omega in [0.5, 2], kappa in [0.02, 0.5] (>= 0 when ``damped`` is False), n_th in
    [0, 0.5], complex drive |E| <= 0.5 (>= 0.05 on cell 0, so no
    reference is identically zero), optional alpha0 (|.| <= 1) and n0 (<= 0.5). Coherent links
    with complex J (|J| <= 0.5) on random pairs. 0..3 reservoirs, each on 1..4 cells, with complex p
    (|p| <= 1.5), Gamma in [0, 0.5] and n_th in [0, 0.5]. With ``damped`` every cell has kappa > 0,
    so the Hermitian part of M is negative definite and a steady state exists.
    ``thermal``: None (random), False (all occupations zero), True (at least one bath hot).
    """
    n = draw(st.integers(min_cells, max_cells))
    omega_L = draw(st.floats(0.5, 2.0))
    G = cn.network(drive_frequency=omega_L)
    hot = st.floats(0.0, 0.5) if thermal is not False else st.just(0.0)
    for i in range(n):
        cn.add_cell(
            G, i,
            omega=draw(st.floats(0.5, 2.0)),
            kappa=draw(st.floats(0.02, 0.5) if damped else st.floats(0.0, 0.5)),
            n_th=draw(hot),
            drive=draw(_complex(0.5, 0.05 if i == 0 else 0.0)),
            alpha0=draw(_complex(1.0)) if initial else 0.0,
            n0=draw(st.floats(0.0, 0.5)) if initial else 0.0,
            battery=draw(st.booleans()),
        )
    if n >= 2:
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=min(len(pairs), 6)))
        for i, j in chosen:
            u, v = (i, j) if draw(st.booleans()) else (j, i)
            cn.add_coherent_link(G, u, v, draw(_complex(0.5)))
    n_res = draw(st.integers(0, 3 if max_res is None else max_res))
    for _ in range(n_res):
        k = draw(st.integers(1, min(4, n)))
        members = draw(st.lists(st.integers(0, n - 1), min_size=k, max_size=k, unique=True))
        cn.add_reservoir(G, {c: draw(_complex(1.5, 0.05)) for c in members},
                         gamma=draw(st.floats(0.0, 0.5)), n_th=draw(hot))
    if thermal is True and not any(G.nodes[c]["n_th"] > 0 for c in range(n)):
        G.nodes[0]["n_th"] = 0.2
    return G
