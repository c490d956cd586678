"""Boltzmann machines: `rbm`, `dbn` and `dbm`, with annealed importance sampling.

* `rbm`: Bernoulli-Bernoulli (or Gaussian-Bernoulli) restricted Boltzmann
  machine trained by CD-k (Hinton 2002) or persistent CD (Tieleman 2008), the
  statistics handed to optax as the gradient; free energy, pseudo-likelihood
  and reconstruction error as monitors; samples from long Gibbs chains.
* `dbn`: greedy layer-wise stacked RBMs (Hinton et al. 2006), a stage per layer
  as a pure function of the step; the variational lower bound on log p(v).
* `dbm`: a two-hidden-layer deep Boltzmann machine (Salakhutdinov & Hinton
  2009): modified-RBM pre-training, mean-field posterior, persistent chains.
* AIS (Salakhutdinov & Murray 2008) as a model-level evaluator (`ais`): log Ẑ,
  its standard error; test log p = evaluate's `neg_free_energy` (or
  `bound_plus_log_z`) minus `ais_log_z`, reported by a derived evaluator as
  `log_likelihood` (`log_likelihood_bound` for dbn/dbm).
* Reverse AIS (`ais.reverse_estimate`) and RAISE (Burda et al. 2015), a
  per-example evaluator of `rbm` with `ais.reverse=True`: `raise_log_likelihood`.

Layout: `settings`, `energies` (the RBM as pure functions, exact enumeration),
`ais`, `method` (rbm), `dbn`, `dbm`. See docs/boltzmann.md.

  config = jaxgen.get_config("rbm")                 # binarized digits, CD-1
  result = jaxgen.fit(config)
  log_p = result.metrics["eval"]["log_likelihood"]
"""

from jaxgen import registry
from jaxgen.families.boltzmann import ais, dbm, dbn, energies, method, settings
from jaxgen.families.boltzmann.method import log_likelihood_of

registry.register(
    "rbm", family="boltzmann",
    description="restricted Boltzmann machine by CD-k / PCD; AIS for log Z",
    default_config=settings.default_config_rbm, make=method.make)
registry.register(
    "dbn", family="boltzmann",
    description="deep belief net: greedy stacked RBMs; lower bound with AIS on the top RBM",
    default_config=lambda data="digits": settings.default_config_stack("dbn"), make=dbn.make)
registry.register(
    "dbm", family="boltzmann",
    description="2-layer deep Boltzmann machine: modified-RBM pre-training, mean field, PCD",
    default_config=lambda data="digits": settings.default_config_stack("dbm"), make=dbm.make)

__all__ = ["ais", "dbm", "dbn", "energies", "log_likelihood_of", "method", "settings"]
