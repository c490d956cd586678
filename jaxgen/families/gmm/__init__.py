"""Gaussian mixtures trained by expectation-maximization (`gmm`).

Full, diagonal, tied and spherical covariances with `reg_covar`, as
scikit-learn's `GaussianMixture` (which the oracle tests match iteration by
iteration); k-means++ initialisation; exact EM (one train step = one EM
iteration over the batch, the whole training set by default) or stepwise
online EM on minibatches (Cappé & Moulines 2009; Liang & Klein 2009);
the per-example log-likelihood as the evaluator; BIC/AIC; sampling.

Layout: `settings` (defaults, frozen settings), `losses` (E-step, M-step,
sufficient statistics, k-means++, BIC/AIC as pure functions), `method` (make).

  config = jaxgen.get_config("gmm")           # toy2d:grid25, K=25, full, exact EM
  result = jaxgen.fit(config)
  points = result.method.sample(result.state, jax.random.PRNGKey(0), 1000)

See docs/classical.md.
"""

from jaxgen import registry
from jaxgen.families.gmm import losses, method, settings
from jaxgen.families.gmm.losses import (
    COVARIANCE_TYPES,
    aic,
    bic,
    e_step,
    em_step,
    kmeans_plus_plus,
    lloyd,
    log_gaussian_prob,
    log_likelihood,
    m_step,
    num_parameters,
    stepwise_em_step,
)
from jaxgen.families.gmm.method import make
from jaxgen.families.gmm.settings import ModelSettings, default_config

registry.register(
    "gmm", family="gmm",
    description="Gaussian mixture by EM: full/diag/tied/spherical covariances, "
                "k-means++ init, exact or stepwise EM",
    default_config=default_config, make=make, default_data="toy2d:grid25")

__all__ = ["COVARIANCE_TYPES", "ModelSettings", "aic", "bic", "default_config", "e_step",
           "em_step", "kmeans_plus_plus", "lloyd", "log_gaussian_prob", "log_likelihood",
           "losses", "m_step", "make", "method", "num_parameters", "settings",
           "stepwise_em_step"]
