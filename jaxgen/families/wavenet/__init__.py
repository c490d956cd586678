"""WaveNet: an exact-likelihood autoregressive model of 1-D signals, with fast generation.

Modules: `settings` (the `model` section's defaults and its frozen, checked
settings), `losses` (the exact NLL from per-sample logits, as pure functions)
and `method` (the `wavenet` method: training, evaluation in nats and bits per
sample, and generation in one compiled loop, naive or cached). The network
and its one-step form are in `jaxgen.nn.wavenet`; μ-law companding is in
`jaxgen.data.codec`. See docs/wavenet.md.

  levels = jaxgen.families.wavenet.generate(model, params, keys, None, 1024, cached=True)
"""

from jaxgen.families.wavenet import losses, method, settings
from jaxgen.families.wavenet.method import generate

__all__ = ["generate", "losses", "method", "settings"]
