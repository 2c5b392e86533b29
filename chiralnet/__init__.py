"""chiralnet: exact simulation of multicell quantum batteries built as chiral networks.

Build a network (NetworkX), then ``simulate`` or ``steady_state`` it::

    >>> import numpy as np, chiralnet as cn
    >>> G = cn.chain(6)
    >>> round(cn.steady_state(G).energy(5), 1)
    55.8
"""

from . import analytic, config, drives, observables
from .builders import chain, lattice, ring, star, two_cell
from .errors import (ChiralnetError, MemoryLimitError, NetworkError, NoSteadyStateError, ScenarioError, SolverError,
                     SweepError)
from .model import Model, State, build_model, initial_state
from .network import (
    add_cell,
    add_chiral_link,
    add_coherent_link,
    add_parametric_link,
    add_reservoir,
    battery_cells,
    cells,
    network,
    reservoirs,
    validate_network,
)
from .observables import (average_power, efficiency, energy_variance, ergotropy, injected_energy, injected_power,
                          log_negativity, max_average_power, stored_power)
from .results import ProtocolResult, SimulationResult, SteadyState
from .solve import METHODS, Protocol, check_stability, protocol, simulate, simulate_to_file, steady_state
from .solve.response import IsolationBand, ScatteringResult, isolation, isolation_bandwidth, scattering
from .formats.graph_json import load_graph, save_graph
from .formats.qutip import to_qutip
from .formats.scenario_toml import Scenario, build_network, load_scenario
from .scenario import run_scenario
from .sweeps import SweepResult, load_sweep, sweep
from .design import OptimizeResult, gradient, optimize

__version__ = "0.1.0"

__all__ = [
    "network", "add_cell", "add_coherent_link", "add_reservoir", "add_chiral_link", "add_parametric_link",
    "validate_network",
    "cells", "reservoirs", "battery_cells",
    "two_cell", "chain", "ring", "star", "lattice",
    "Model", "State", "build_model", "initial_state",
    "simulate", "simulate_to_file", "steady_state", "check_stability", "METHODS", "protocol", "Protocol", "drives",
    "ergotropy", "injected_power", "stored_power", "average_power", "max_average_power", "injected_energy",
    "efficiency", "energy_variance", "log_negativity",
    "sweep", "load_sweep", "SweepResult",
    "gradient", "optimize", "OptimizeResult",
    "scattering", "isolation", "isolation_bandwidth", "ScatteringResult", "IsolationBand", "to_qutip",
    "SimulationResult", "ProtocolResult", "SteadyState",
    "analytic", "config", "observables",
    "save_graph", "load_graph", "load_scenario", "build_network", "run_scenario", "Scenario", "ScenarioError",
    "ChiralnetError", "NetworkError", "NoSteadyStateError", "SolverError", "MemoryLimitError", "SweepError",
]
