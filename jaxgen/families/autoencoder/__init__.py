"""Deterministic autoencoders: plain (`ae`), denoising (`dae`) and sparse (`sae`).

An encoder maps x to a code h = f(x), a decoder maps it back; training
minimises a per-example reconstruction loss (squared error, or Bernoulli
cross-entropy for data in [0, 1]).

* `dae` (Vincent et al. 2008, 2010): the encoder sees a corrupted x̃, the loss
  compares the reconstruction with the clean x. Corruptions: additive Gaussian
  noise, masking (a fraction ν of inputs set to the background value) and
  salt-and-pepper (a fraction ν set to the minimum or maximum, half each),
  drawn fresh every step from the step's key, one draw per example.
  As a generative model (Bengio et al. 2013): `model.sampler='chain'` samples
  by the Markov chain corrupt -> draw from P(X | x̃) -> repeat;
  `model.walkback_steps` adds walk-back training pairs.
* `sae`: an L1 penalty λ Σ_j |h_j| on the code, or the KL penalty
  β Σ_j KL(ρ || ρ̂_j) between a target activation ρ and each unit's mean
  activation ρ̂_j over the batch (Ng 2011, CS294A notes), with a sigmoid code.

Layout: `settings` (defaults, frozen settings), `losses` (pure functions),
`networks` (encoder, decoder), `method` (make).

  config = jaxgen.get_config("dae")
  result = jaxgen.fit(config)
  codes = result.method.encode(result.state, x)
  images = result.method.reconstruct(result.state, {"x": x}, key)
"""

from jaxgen import registry
from jaxgen.families.autoencoder import losses, method, networks, settings
from jaxgen.families.autoencoder.losses import (
    CORRUPTIONS,
    LOSSES,
    chain_transition,
    corrupt,
    kl_sparsity_penalty,
    l1_penalty,
    reconstruction_loss,
    reconstruction_sample,
    walkback_inputs,
)
from jaxgen.families.autoencoder.method import (
    CODE_MOMENT_DECAY,
    make,
    make_ae,
    make_dae,
    make_sae,
    run_chain,
)
from jaxgen.families.autoencoder.networks import (
    ACTIVATIONS,
    CODE_ACTIVATIONS,
    Decoder,
    Encoder,
)
from jaxgen.families.autoencoder.settings import (
    ARCHITECTURES,
    PENALTIES,
    SAMPLERS,
    ModelSettings,
    Settings,
    default_config,
    default_config_ae,
    default_config_dae,
    default_config_sae,
)

registry.register(
    "ae", family="autoencoder",
    description="autoencoder: MLP or conv, squared error or cross-entropy",
    default_config=default_config_ae, make=make_ae)
registry.register(
    "dae", family="autoencoder",
    description="denoising autoencoder: gaussian, masking or salt-and-pepper corruption; "
                "samples by its Markov chain (walk-back option)",
    default_config=default_config_dae, make=make_dae)
registry.register(
    "sae", family="autoencoder",
    description="sparse autoencoder: KL (target activation) or L1 penalty on the code",
    default_config=default_config_sae, make=make_sae)

__all__ = ["ACTIVATIONS", "ARCHITECTURES", "CODE_ACTIVATIONS", "CODE_MOMENT_DECAY",
           "CORRUPTIONS", "Decoder", "Encoder", "LOSSES", "ModelSettings", "PENALTIES",
           "SAMPLERS", "Settings", "chain_transition", "corrupt", "default_config",
           "default_config_ae", "default_config_dae", "default_config_sae",
           "kl_sparsity_penalty", "l1_penalty", "losses", "make", "make_ae", "make_dae",
           "make_sae", "method", "networks", "reconstruction_loss", "reconstruction_sample",
           "run_chain", "settings", "walkback_inputs"]
