"""PixelCNN and Gated PixelCNN: exact-likelihood autoregressive image models.

Modules: `settings` (the `model` section's defaults and its frozen, checked
settings), `losses` (the exact NLL from per-value logits, as pure functions)
and `method` (the `pixelcnn` method: training, evaluation in nats and bits/dim,
sampling and completion in one compiled loop). The masked convolutions and
the gated stacks are in `jaxgen.nn.masked`; levels and bits/dim come from the
shared `jaxgen.data.codec`. See docs/pixelcnn.md.

  images = jaxgen.families.pixelcnn.complete(method, state, key, images, mask)
"""

from jaxgen.families.pixelcnn import losses, method, settings
from jaxgen.families.pixelcnn.method import complete

__all__ = ["complete", "losses", "method", "settings"]
