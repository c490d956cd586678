"""Conditional VAE on 8x8 digits: the label, one-hot, enters encoder and decoder.

  jaxgen train cvae --config experiments/cvae_digits.py --workdir runs/cvae_digits
  python -c "import jaxgen; print(jaxgen.sample('runs/cvae_digits', num=10, labels=[7] * 10).shape)"

The run's samples.png shows rows cycling through 0..9 (the default labels).
Expect (5,000 steps, under a minute on 2 CPU cores; seed 0, measured here):
test ELBO -20.2 nats, log p(x | label) estimate -19.8 nats (K=1000); the label
carries information the unconditional VAE (vae_digits.py, -22.4) must encode.
"""

import jaxgen


def get_config():
  config = jaxgen.get_config("cvae", "digits")
  config.model.latent_dim = 8
  config.model.hidden = (256, 128)
  config.model.eval_importance_samples = 1000
  config.data.batch_size = 128
  config.train.steps = 5000
  config.train.eval_every = 1000
  config.train.num_samples = 100  # a 10x10 grid: each row 0..9
  return config
