"""Built-in studies, one call (or one ``chiralnet study NAME --out DIR``) each, with figures.

Scale studies of the seed paper's model (:mod:`~chiralnet.studies.scale`):

- ``chain-length``, ``cooperativity``, ``topology``, ``disorder``.

The field's recent results, reproduced (docs: "Reproduced results"):

- ``topology-scaling`` (:mod:`~chiralnet.studies.optimal_rates`): the optimal link rate against the
  number of battery cells, cascaded chain, star and reciprocal chain;
- ``nonreciprocal-gain`` (:mod:`~chiralnet.studies.distance_gain`): the nonreciprocal over the
  reciprocal chain's end-cell energy, growth per link;
- ``charging-line`` (:mod:`~chiralnet.studies.cavity_line`): a battery at the end of a line of
  coupled cavities, uniform and perfect-transfer couplings;
- ``squeezed-reservoirs``, ``counter-rotating``, ``two-photon-pump``
  (:mod:`~chiralnet.studies.squeezed_reservoirs`): the general Gaussian class (squeezed link reservoirs,
  two LC circuits, a two-photon pumped charger).

Each study writes ``<name>.csv``, ``<name>.png`` and ``<name>.txt`` (the summary) into ``out`` and returns a
:class:`StudyResult`.
"""

from ._common import StudyResult
from .cavity_line import charging_line
from .distance_gain import nonreciprocal_gain
from .scale import DRIVE, GAMMA, KAPPA, chain_length, cooperativity, disorder, equal_rate_network, n_links, topology
from .optimal_rates import topology_scaling
from .squeezed_reservoirs import counter_rotating, squeezed_reservoirs, two_photon_pump

__all__ = ["STUDIES", "StudyResult", "GAMMA", "KAPPA", "DRIVE", "chain_length", "cooperativity", "topology", "equal_rate_network", "n_links",
           "disorder",
           "topology_scaling", "nonreciprocal_gain", "charging_line", "squeezed_reservoirs", "counter_rotating",
           "two_photon_pump"]

#: name -> study function (the ``chiralnet study NAME`` choices).
STUDIES = {
    "chain-length": chain_length, "cooperativity": cooperativity, "topology": topology, "disorder": disorder,
    "topology-scaling": topology_scaling, "nonreciprocal-gain": nonreciprocal_gain, "charging-line": charging_line,
    "squeezed-reservoirs": squeezed_reservoirs, "counter-rotating": counter_rotating,
    "two-photon-pump": two_photon_pump,
}
