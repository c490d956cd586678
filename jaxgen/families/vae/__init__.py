"""Variational autoencoders: VAE, β-VAE, conditional VAE and IWAE.

Encoder q(z|x) = N(mean(x), diag(exp(logvar(x)))), prior p(z) = N(0, I), decoder
p(x|z) Bernoulli, Gaussian (fixed or learned scale) or discretized logistic,
chosen by default from the data's value type (settings.py).

* `vae` (Kingma & Welling 2014): maximises E_q[log p(x|z)] − β·KL(q(z|x) || p(z))
  with the reparameterisation trick and the closed-form KL; β = 1 is the ELBO,
  β > 1 the β-VAE (Higgins et al. 2017); `kl_warmup_steps` ramps β linearly
  from 0 (Bowman et al. 2016; Sønderby et al. 2016).
* `cvae` (Sohn et al. 2015): the label, one-hot, enters encoder and decoder;
  `sample(state, key, num, labels=...)` draws chosen digits.
* `iwae` (Burda et al. 2016): maximises the importance-weighted bound
  L_k = E[log (1/k) Σ_i p(x, z_i) / q(z_i|x)] with k = `importance_samples`.

Every variant can evaluate log p(x) with K importance samples
(`model.eval_importance_samples`, K up to thousands, in chunks of bounded
memory); `importance_weighted_bound` is the reusable pure function.

Layout: `settings` (defaults, frozen settings), `losses` (the objectives as
pure per-example functions), `networks` (encoder, decoder), `method` (make).

  config = jaxgen.get_config("vae")            # digits, MLP, Bernoulli
  result = jaxgen.fit(config)
  images = result.method.sample(result.state, jax.random.PRNGKey(0), 16)
"""

from jaxgen import registry
from jaxgen.families.vae import losses, method, networks, settings
from jaxgen.families.vae.losses import (
    LIKELIHOODS,
    importance_noise,
    importance_weighted_bound,
)
from jaxgen.families.vae.method import make, make_cvae, make_iwae, make_vae
from jaxgen.families.vae.networks import ACTIVATIONS, Decoder, Encoder
from jaxgen.families.vae.settings import (
    ARCHITECTURES,
    SAMPLE_MODES,
    VARIANCES,
    ModelSettings,
    Settings,
    default_config,
)

registry.register(
    "vae", family="vae",
    description="variational autoencoder (β, KL warm-up): MLP or conv; Bernoulli, "
                "Gaussian or discretized-logistic decoder",
    default_config=default_config, make=make_vae)
registry.register(
    "cvae", family="vae",
    description="conditional VAE: labels into encoder and decoder; sample(labels=...)",
    default_config=default_config, make=make_cvae)
registry.register(
    "iwae", family="vae",
    description="importance-weighted autoencoder: trains the k-sample bound "
                "(Burda et al. 2016)",
    default_config=default_config, make=make_iwae)

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "Decoder", "Encoder", "LIKELIHOODS",
           "ModelSettings", "SAMPLE_MODES", "Settings", "VARIANCES", "default_config",
           "importance_noise", "importance_weighted_bound", "losses", "make",
           "make_cvae", "make_iwae", "make_vae", "method", "networks", "settings"]
