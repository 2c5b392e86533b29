"""Observables: one registry of named quantities, each defined once (:data:`QUANTITIES`).

- :mod:`~chiralnet.observables.registry`: :class:`Quantity`, :data:`QUANTITIES`, :func:`evaluate`.
- :mod:`~chiralnet.observables.charging`: :func:`time_to_fraction` (exact time to 90%).
- :mod:`~chiralnet.observables.work`: :func:`ergotropy` (local and Gaussian), :func:`injected_power`.
- :mod:`~chiralnet.observables.power`: :func:`stored_power` (dE_B/dt), :func:`average_power`,
  :func:`max_average_power`, :func:`injected_energy`, :func:`efficiency` (exact).
- :mod:`~chiralnet.observables.gaussian`: :func:`energy_variance`, :func:`log_negativity`, the ergotropy of
  squeezed states (general Gaussian networks).
- :mod:`~chiralnet.observables.reference`: :func:`two_cell_reference`, the seed paper's pair with the
  same rates as a network (xi included).

``chiralnet run``, sweeps, studies and plots read these definitions.
"""

from .charging import charging_time, time_staying_above, time_to_fraction
from .reference import reference_rates, two_cell_limits, two_cell_reference
from .registry import QUANTITIES, Inputs, Quantity, evaluate, get, register
from .power import PowerPeak, average_power, efficiency, injected_energy, max_average_power, stored_power
from .work import ergotropy, gaussian_ergotropy, injected_power
from .gaussian import energy_variance, log_negativity

__all__ = ["QUANTITIES", "Quantity", "Inputs", "evaluate", "get", "register", "time_to_fraction", "time_staying_above",
           "charging_time",
           "two_cell_reference", "two_cell_limits", "reference_rates", "ergotropy", "injected_power",
           "gaussian_ergotropy", "stored_power", "average_power", "max_average_power", "injected_energy", "efficiency",
           "PowerPeak", "energy_variance", "log_negativity"]
