"""jaxgen against the same models in plain PyTorch: train steps/s, side by side.

Run: python benchmarks/vs_pytorch.py [--rows a,b] [--rounds N] [--steps K]
         [--threads N] [--no-compile] [--quick] [--out FILE] [--figure PNG]
     python benchmarks/vs_pytorch.py --figure-only FILE [FILE ...] [--figure PNG]
Needs PyTorch (CPU): pip install -e '.[bench]'.

For each row (a model in one of jaxgen's default configs, with the overrides
listed in ROWS) it builds jaxgen's train step through the public API
(`jaxgen.registry.get(method).make(config, spec)`, jitted with the state
donated, as the engine runs it) and the same model written module for module
in PyTorch: same layers, widths, kernels, strides, paddings, normalizations
(with their epsilons and momenta), activations, batch, loss and Adam settings
(learning rate, b1, b2, eps; fused Adam), plus what jaxgen's step does besides
(EMA of the weights, gradient clipping, n_critic discriminator updates and one
generator update for GANs). Parameter counts, tensor by tensor, and output
shapes are asserted equal before anything is timed.

Timing, all in this one process on one synthetic batch (the same numbers for
both): each implementation's first step is timed alone (its compilation:
"time to first step"), then a few warm-up steps, then `--rounds` rounds in
which jaxgen, PyTorch eager and `torch.compile` (if it compiles; a failure is
recorded, not fatal) each run K steps back to back, the order rotating from
round to round. The rate of an implementation is its median over the rounds.
PyTorch runs `--threads` intra-op threads (default: every core the process
may use); XLA's CPU client keeps its own thread pool, which XLA sizes to the
cores the process may run on, so with fewer threads than cores the process is
first restricted to that many cores (sched_setaffinity), for both.
Results go to benchmarks/results/vs_pytorch.json; see docs/performance.md.

The bar chart of docs/performance.md (docs/figures/vs_pytorch.png: steps/s of
the three implementations per row, one panel per results file) is redrawn at
the end of every full run that writes one of the two files that page shows
(vs_pytorch.json, vs_pytorch_likelihood.json), from both; `--figure-only FILE
...` redraws it from saved files without timing anything.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import pathlib
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from benchmarks import common  # noqa: E402  pylint: disable=wrong-import-position

IMPLEMENTATIONS = ("jaxgen", "torch_eager", "torch_compile")
# flax's normalization defaults, which the PyTorch layers must copy.
FLAX_BATCH_NORM_EPS = 1e-5
FLAX_GROUP_NORM_EPS = 1e-6


@dataclasses.dataclass(frozen=True)
class Row:
  """One benchmarked model: a jaxgen config and the data it trains on."""

  description: str
  method: str                 # registry name
  data: str                   # the data name get_config picks defaults by
  shape: tuple[int, int, int]  # one example (H, W, C)
  batch_size: int
  overrides: tuple[str, ...]  # on top of jaxgen.get_config(method, data)
  # K, steps per implementation per round in a full run: about half a second
  # or more of each implementation on a 2-core CPU.
  steps: int
  value_range: tuple[float, float] = (-1.0, 1.0)
  binary: bool = False        # data in {0, 1} (the VAE's Bernoulli decoder)
  levels: int = 256


MNIST = "idx:../shared/data/mnist-t10k"
ROWS: dict[str, Row] = {
    "vae-mlp-digits": Row(
        "MLP VAE, digits 8x8 (the default vae config)", "vae", "digits", (8, 8, 1), 128,
        (), steps=500, value_range=(0.0, 1.0), binary=True, levels=17),
    "vae-conv-mnist": Row(
        "conv VAE, MNIST 28x28 (as benchmarks/train_throughput.py)", "vae", MNIST,
        (28, 28, 1), 128, ("model.architecture=conv", "model.latent_dim=32"), steps=20,
        value_range=(0.0, 1.0), binary=True),
    "dcgan-mnist": Row(
        "DCGAN, MNIST 28x28, the experiments/gan_dcgan_digits.py setting (half widths)",
        "gan", MNIST, (28, 28, 1), 64,
        ("model.generator_channels=(64, 32)", "model.discriminator_channels=(32, 64)"),
        steps=20),
    "dcgan-32": Row(
        "DCGAN, 32x32x3 (CIFAR-10 shape), the default gan config (paper widths)", "gan",
        "cifar10", (32, 32, 3), 64, (), steps=5),
    "ddpm-digits": Row(
        "DDPM U-Net, digits 8x8, the experiments/diffusion_digits.py setting", "ddpm",
        "digits", (8, 8, 1), 64,
        ("model.channels=32", "model.channel_mults=(1, 2)", "model.num_res_blocks=1",
         "model.attention_resolutions=(4,)"), steps=20, levels=17),
    "ddpm-mnist": Row(
        "DDPM U-Net, MNIST 28x28, the experiments/diffusion_digits.py setting", "ddpm",
        MNIST, (28, 28, 1), 32,
        ("model.channels=16", "model.channel_mults=(1, 2, 2)", "model.num_res_blocks=1",
         "model.attention_resolutions=(7,)"), steps=10),
    "pixelcnn-mnist": Row(
        "PixelCNN, binarized MNIST 28x28, the experiments/pixelcnn_mnist.py setting",
        "pixelcnn", MNIST, (28, 28, 1), 32,
        ("model.architecture=pixelcnn", "model.features=32", "model.layers=5",
         "model.output_features=64"), steps=5, value_range=(0.0, 1.0), binary=True, levels=2),
    "gated-pixelcnn-mnist": Row(
        "Gated PixelCNN, binarized MNIST 28x28, the experiments/pixelcnn_mnist.py setting",
        "pixelcnn", MNIST, (28, 28, 1), 32,
        ("model.architecture=gated", "model.features=32", "model.layers=5",
         "model.output_features=64"), steps=3, value_range=(0.0, 1.0), binary=True, levels=2),
    "realnvp-digits": Row(
        "RealNVP multi-scale flow, digits 8x8 (the default realnvp config)", "realnvp",
        "digits", (8, 8, 1), 64, (), steps=10, value_range=(0.0, 1.0), levels=17),
}


# ----------------------------------------------------------------- jaxgen
def jaxgen_config(row: Row):
  """The jaxgen config of a row: the method's defaults, the row's overrides, its batch."""
  import jaxgen  # pylint: disable=import-outside-toplevel
  from jaxgen import config as config_lib  # pylint: disable=import-outside-toplevel
  config = jaxgen.get_config(row.method, row.data)
  extra = [f"data.batch_size={row.batch_size}"]
  if row.method == "vae" and row.binary and config.model.likelihood == "auto":
    # 'auto' resolves to Bernoulli on binary data; spelled out so the mirrored
    # PyTorch model is unambiguous.
    extra.append("model.likelihood=bernoulli")
  config_lib.apply_overrides(config, list(row.overrides) + extra)
  return config


def data_spec(row: Row):
  """A DataSpec for synthetic data of the row's shape (no dataset is read)."""
  from jaxgen import data as data_lib  # pylint: disable=import-outside-toplevel
  return data_lib.DataSpec(
      name=f"synthetic {'x'.join(map(str, row.shape))}", shape=tuple(row.shape),
      num_classes=10, num_train=10_000, num_test=1_000, is_image=True,
      value_range=tuple(row.value_range), binary=row.binary, levels=row.levels,
      image_shape=tuple(row.shape))


def synthetic_images(row: Row, seed: int = 0) -> np.ndarray:
  """One batch [B, H, W, C] float32 in the data's range (binary for Bernoulli data)."""
  rng = np.random.default_rng(seed)
  shape = (row.batch_size,) + tuple(row.shape)
  if row.binary:
    return (rng.uniform(size=shape) < 0.3).astype(np.float32)
  lo, hi = row.value_range
  return rng.uniform(lo, hi, size=shape).astype(np.float32)


class JaxgenStep:
  """jaxgen's jitted train step (state donated) on one fixed batch."""

  def __init__(self, row: Row, images: np.ndarray, shapes_only: bool = False):
    import jax  # pylint: disable=import-outside-toplevel
    import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
    import jaxgen  # pylint: disable=import-outside-toplevel
    self.config = jaxgen_config(row)
    self.spec = data_spec(row)
    self.method = jaxgen.registry.get(row.method).make(self.config, self.spec)
    self.batch = {"x": jnp.asarray(images),
                  "label": jnp.zeros((row.batch_size,), jnp.int32)}
    # shapes_only: the state's shapes alone (for parity checks; nothing compiled).
    init = jax.eval_shape if shapes_only else lambda f, *a: jax.jit(f)(*a)
    self.state = init(self.method.init, jax.random.PRNGKey(0), self.batch)
    self.param_sizes = sorted(math.prod(p.shape) for p in jax.tree.leaves(self.state.params))
    self._step = jax.jit(self.method.train_step, donate_argnums=0)
    self._block = jax.block_until_ready

  def run(self, steps: int) -> None:
    for _ in range(steps):
      self.state, _ = self._step(self.state, self.batch)
    self._block(self.state)

  def output_shape(self) -> tuple[int, ...] | None:
    """Shape of what the model outputs per batch in data space (None: not cheap)."""
    import jax  # pylint: disable=import-outside-toplevel
    if self.method.name == "vae":
      return jax.eval_shape(self.method.reconstruct, self.state, self.batch,
                            jax.random.PRNGKey(0)).shape
    if self.method.name in ("gan", "pixelcnn", "realnvp"):
      return jax.eval_shape(lambda s, k: self.method.sample(s, k, 2), self.state,
                            jax.random.PRNGKey(0)).shape
    return None


def adam_settings(step: JaxgenStep) -> dict[str, dict[str, Any]]:
  """The resolved Adam sections jaxgen's method trains with: {group: section}."""
  if step.method.name == "gan":
    settings = step.method.eval_protocol["settings"]
    sections = {"generator": dict(settings["generator_optim"]),
                "discriminator": dict(settings["discriminator_optim"])}
  else:
    sections = {"model": step.config.optim.to_dict()}
  for name, section in sections.items():
    if section["name"] != "adam":
      raise ValueError(f"vs_pytorch mirrors Adam only; {name} uses {section['name']!r}")
    if section["grad_clip_norm"] and step.method.name != "ddpm":
      raise ValueError(f"vs_pytorch clips gradients in the DDPM rows only; {name} has "
                       f"grad_clip_norm={section['grad_clip_norm']}")
    if section["schedule"] != "constant" or section["warmup_steps"]:
      raise ValueError(f"vs_pytorch mirrors a constant learning rate only; {name} has "
                       f"schedule {section['schedule']!r}, warm-up {section['warmup_steps']}")
  return sections


# ---------------------------------------------------------------- PyTorch
def torch_models() -> Any:
  """The PyTorch side, defined on first use so the module imports without torch."""
  # Longer than our ~80-line rule on purpose: the classes subclass torch.nn.Module,
  # so they can only be defined once torch is imported, and keeping them in this
  # one script keeps each model next to the jaxgen module it mirrors.
  # pylint: disable=import-outside-toplevel
  import torch
  from torch import nn
  from torch.nn import functional as F

  def mlp(sizes: Sequence[int], activate_final: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
      layers.append(nn.Linear(sizes[i], sizes[i + 1]))
      if i < len(sizes) - 2 or activate_final:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)

  class VAE(nn.Module):
    """jaxgen.families.vae: Encoder/Decoder, MLP or conv (ConvEncoder/ConvDecoder)."""

    def __init__(self, architecture: str, shape, latent_dim: int, hidden, channels):
      super().__init__()
      height, width, c = shape
      if architecture == "mlp":
        self.encoder = nn.Sequential(nn.Flatten(), mlp((height * width * c,) + hidden, True))
        self.decoder = nn.Sequential(
            mlp((latent_dim,) + hidden[::-1] + (height * width * c,), False),
            nn.Unflatten(1, (c, height, width)))
      else:
        # ConvEncoder: 3x3 stride-2 SAME convs (flax pads (0, 1), PyTorch (1, 1):
        # same output size and work), flatten, Dense, then the encoder's activation.
        layers, cin = [], c
        for width_i in channels:
          layers += [nn.Conv2d(cin, width_i, 3, stride=2, padding=1), nn.ReLU()]
          cin = width_i
        factor = 2 ** len(channels)
        layers += [nn.Flatten(), nn.Linear(cin * (height // factor) * (width // factor),
                                           hidden[-1]), nn.ReLU()]
        self.encoder = nn.Sequential(*layers)
        # ConvDecoder: Dense, reshape, ReLU, 4x4 stride-2 transposed convs (flax
        # SAME = PyTorch padding 1), ReLU, a 3x3 output conv.
        rev = channels[::-1]
        base = (rev[0], height // factor, width // factor)
        layers = [nn.Linear(latent_dim, math.prod(base)), nn.Unflatten(1, base), nn.ReLU()]
        cin = rev[0]
        for i in range(len(rev)):
          features = rev[min(i + 1, len(rev) - 1)]
          layers += [nn.ConvTranspose2d(cin, features, 4, stride=2, padding=1), nn.ReLU()]
          cin = features
        layers.append(nn.Conv2d(cin, c, 3, padding=1))
        self.decoder = nn.Sequential(*layers)
      self.posterior = nn.Linear(hidden[-1], 2 * latent_dim)

    def loss(self, x, eps):
      """Negative ELBO, Bernoulli decoder, closed-form KL, batch mean."""
      mean, logvar = self.posterior(self.encoder(x)).chunk(2, dim=-1)
      z = mean + torch.exp(0.5 * logvar) * eps
      logits = self.decoder(z)
      reconstruction = -F.binary_cross_entropy_with_logits(
          logits, x, reduction="none").sum(dim=(1, 2, 3))
      kl = 0.5 * (torch.exp(logvar) + mean * mean - 1.0 - logvar).sum(dim=-1)
      return (kl - reconstruction).mean()

  def batch_norm(channels: int) -> nn.BatchNorm2d:
    # flax momentum 0.9 (jaxgen.nn.dcgan) is PyTorch momentum 0.1.
    return nn.BatchNorm2d(channels, eps=FLAX_BATCH_NORM_EPS, momentum=0.1)

  class Generator(nn.Module):
    """jaxgen.nn.dcgan.DCGANGenerator with batch norm and a tanh output."""

    def __init__(self, latent_dim: int, shape, channels):
      super().__init__()
      height, width, c = shape
      factor = 2 ** len(channels)
      base = (channels[0], height // factor, width // factor)
      layers = [nn.Linear(latent_dim, math.prod(base), bias=False), nn.Unflatten(1, base),
                batch_norm(channels[0]), nn.ReLU()]
      for i in range(1, len(channels)):
        layers += [nn.ConvTranspose2d(channels[i - 1], channels[i], 4, stride=2, padding=1,
                                      bias=False), batch_norm(channels[i]), nn.ReLU()]
      layers += [nn.ConvTranspose2d(channels[-1], c, 4, stride=2, padding=1), nn.Tanh()]
      self.net = nn.Sequential(*layers)

    def forward(self, z):
      return self.net(z)

  class Discriminator(nn.Module):
    """jaxgen.nn.dcgan.DCGANDiscriminator + the family's score head."""

    def __init__(self, shape, channels):
      super().__init__()
      height, width, c = shape
      layers, cin = [], c
      for i, width_i in enumerate(channels):
        layers.append(nn.Conv2d(cin, width_i, 4, stride=2, padding=1, bias=i == 0))
        if i > 0:
          layers.append(batch_norm(width_i))
        layers.append(nn.LeakyReLU(0.2))
        cin = width_i
      factor = 2 ** len(channels)
      layers += [nn.Flatten(), nn.Linear(cin * (height // factor) * (width // factor), 1)]
      self.net = nn.Sequential(*layers)

    def forward(self, x):
      return self.net(x)[:, 0]

  def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(groups, channels), channels, eps=FLAX_GROUP_NORM_EPS)

  class ResBlock(nn.Module):
    """jaxgen.nn.unet.ResBlock: GN-swish-conv, + Dense(swish(emb)), GN-swish-conv, + skip."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int):
      super().__init__()
      self.norm_0, self.conv_0 = group_norm(cin, groups), nn.Conv2d(cin, cout, 3, padding=1)
      self.embedding = nn.Linear(emb_dim, cout)
      self.norm_1, self.conv_1 = group_norm(cout, groups), nn.Conv2d(cout, cout, 3, padding=1)
      self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, emb):
      h = self.conv_0(F.silu(self.norm_0(x)))
      h = h + self.embedding(F.silu(emb))[:, :, None, None]
      h = self.conv_1(F.silu(self.norm_1(h)))
      return self.skip(x) + h

  class Attention(nn.Module):
    """jaxgen.nn.unet.AttentionBlock; 1x1-conv projections, as lucidrains writes them."""

    def __init__(self, channels: int, heads: int, groups: int):
      super().__init__()
      self.heads = heads
      self.norm = group_norm(channels, groups)
      self.qkv = nn.Conv2d(channels, 3 * channels, 1)
      self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
      b, c, h, w = x.shape
      qkv = self.qkv(self.norm(x)).reshape(b, self.heads, 3 * c // self.heads, h * w)
      q, k, v = qkv.chunk(3, dim=2)
      weights = torch.einsum("bhdq,bhdk->bhqk", q, k) * (c // self.heads) ** -0.5
      out = torch.einsum("bhqk,bhdk->bhdq", weights.softmax(dim=-1), v)
      return x + self.out(out.reshape(b, c, h, w))

  class UNet(nn.Module):
    """jaxgen.nn.unet.UNet (unconditional), block for block."""

    def __init__(self, shape, channels: int, mults, num_res_blocks: int, attention, heads,
                 groups):
      super().__init__()
      size, _, c = shape
      emb_dim = 4 * channels
      self.sinusoid_dim = emb_dim // 4 if emb_dim >= 8 else emb_dim
      self.time = nn.ModuleList([nn.Linear(self.sinusoid_dim, emb_dim),
                                 nn.Linear(emb_dim, emb_dim)])
      self.conv_in = nn.Conv2d(c, channels, 3, padding=1)
      # (kind, module) in call order; kinds: res, attn, down, up; skips pushed on
      # the way down and popped (concatenated) on the way up, as in jaxgen.
      self.order: list[str] = []
      self.blocks = nn.ModuleList()
      skips, ch = [channels], channels

      def add(kind: str, module: nn.Module) -> None:
        self.order.append(kind)
        self.blocks.append(module)

      for level, mult in enumerate(mults):
        for _ in range(num_res_blocks):
          add("res_push", ResBlock(ch, channels * mult, emb_dim, groups))
          ch = channels * mult
          if size in attention:
            self.order[-1] = "res"
            add("attn_push", Attention(ch, heads, groups))
          skips.append(ch)
        if level < len(mults) - 1:
          add("down_push", nn.Conv2d(ch, ch, 3, stride=2, padding=1))
          skips.append(ch)
          size //= 2
      add("res", ResBlock(ch, ch, emb_dim, groups))
      add("attn", Attention(ch, heads, groups))
      add("res", ResBlock(ch, ch, emb_dim, groups))
      for level, mult in reversed(list(enumerate(mults))):
        for _ in range(num_res_blocks + 1):
          add("pop_res", ResBlock(ch + skips.pop(), channels * mult, emb_dim, groups))
          ch = channels * mult
          if size in attention:
            add("attn", Attention(ch, heads, groups))
        if level > 0:
          add("up", nn.Conv2d(ch, ch, 3, padding=1))
          size *= 2
      self.norm_out = group_norm(ch, groups)
      self.conv_out = nn.Conv2d(ch, c, 3, padding=1)

    def embed(self, t):
      half = self.sinusoid_dim // 2
      freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, dtype=torch.float32) / half)
      args = t.float()[:, None] * freqs[None, :]
      emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
      return self.time[1](F.silu(self.time[0](emb)))

    def forward(self, x, t):
      emb = self.embed(t)
      h = self.conv_in(x)
      skips = [h]
      for kind, block in zip(self.order, self.blocks):
        if kind.startswith("pop_"):
          h = torch.cat([h, skips.pop()], dim=1)
        if "res" in kind:
          h = block(h, emb)
        elif kind == "up":
          h = block(F.interpolate(h, scale_factor=2, mode="nearest"))
        else:
          h = block(h)
        if kind.endswith("_push"):
          skips.append(h)
      return self.conv_out(F.silu(self.norm_out(h)))

  ns = dict(torch=torch, VAE=VAE, Generator=Generator, Discriminator=Discriminator,
            UNet=UNet)
  ns.update(_likelihood_models(torch, nn, F))
  return ns


def _likelihood_models(torch: Any, nn: Any, F: Any) -> dict[str, Any]:
  """PixelCNN, Gated PixelCNN and RealNVP in PyTorch, layer for layer as jaxgen.nn."""
  # Longer than ~80 lines for the reason given in torch_models. The masks and
  # paddings are read from jaxgen's own (unbound) flax layer definitions, so
  # both sides convolve with the same masked kernels.
  # pylint: disable=import-outside-toplevel
  from jaxgen.nn import flows, masked

  class MaskedConv(nn.Module):
    """jaxgen.nn.masked.MaskedConv: kernel × fixed mask, explicit asymmetric padding."""

    def __init__(self, cin: int, layer: Any):
      super().__init__()
      self.conv = nn.Conv2d(cin, layer.features, tuple(layer.kernel_size))
      (top, bottom), (left, right) = layer.padding
      self.pad = (left, right, top, bottom)
      mask = None if layer.mask is None else np.asarray(layer.mask).transpose(3, 2, 0, 1)
      self.register_buffer("mask", None if mask is None else
                           torch.from_numpy(np.ascontiguousarray(mask)))

    def forward(self, x):
      weight = self.conv.weight if self.mask is None else self.conv.weight * self.mask
      return F.conv2d(F.pad(x, self.pad), weight, self.conv.bias)

  def conv_b(cin, features, kernel, in_groups, out_groups, mask_type="B"):
    return MaskedConv(cin, masked.pixelcnn_conv(features, kernel, in_groups, out_groups,
                                                mask_type))

  class OutputLayers(nn.Module):
    """masked._OutputLayers: ReLU, 1×1 mask B, ReLU, 1×1 mask B to colors × levels."""

    def __init__(self, features, output_features, colors, levels):
      super().__init__()
      groups = masked.channel_groups(features, colors)
      hidden = masked.channel_groups(output_features, colors)
      logit_groups = masked.channel_groups(colors * levels, colors)
      self.hidden = conv_b(features, output_features, 1, groups, hidden)
      self.logits = conv_b(output_features, colors * levels, 1, hidden, logit_groups)

    def forward(self, h):
      return self.logits(F.relu(self.hidden(F.relu(h))))

  class ResidualBlock(nn.Module):
    """masked.ResidualBlock (2016a, Figure 5)."""

    def __init__(self, features, kernel, colors):
      super().__init__()
      half = max(features // 2, colors)
      outer = masked.channel_groups(features, colors)
      inner = masked.channel_groups(half, colors)
      self.reduce = conv_b(features, half, 1, outer, inner)
      self.conv = conv_b(half, half, kernel, inner, inner)
      self.expand = conv_b(half, features, 1, inner, outer)

    def forward(self, x):
      return x + self.expand(F.relu(self.conv(F.relu(self.reduce(F.relu(x))))))

  class PixelCNN(nn.Module):
    """masked.PixelCNN: x [B, C, H, W] -> logits [B, C·levels, H, W] (group-major)."""

    def __init__(self, features, layers, output_features, colors, levels, first_kernel,
                 kernel):
      super().__init__()
      groups = masked.channel_groups(features, colors)
      self.input = conv_b(colors, features, first_kernel, np.arange(colors), groups, "A")
      self.blocks = nn.ModuleList([ResidualBlock(features, kernel, colors)
                                   for _ in range(layers)])
      self.output = OutputLayers(features, output_features, colors, levels)

    def forward(self, x):
      h = self.input(x)
      for block in self.blocks:
        h = block(h)
      return self.output(h)

  def gate(y):
    a, b = y.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)

  class GatedLayer(nn.Module):
    """masked.GatedLayer (2016b, Figure 2), unconditional."""

    def __init__(self, cin, features, kernel, colors, first):
      super().__init__()
      groups = masked.channel_groups(features, colors)
      in_groups = np.arange(colors) if first else groups
      doubled = np.concatenate([groups, groups])
      self.first = first
      self.vertical = MaskedConv(cin, masked.vertical_conv(2 * features, kernel))
      self.horizontal = MaskedConv(cin, masked.horizontal_conv(
          2 * features, kernel, in_groups, doubled, "A" if first else "B"))
      self.link = nn.Conv2d(2 * features, 2 * features, 1)
      self.out = conv_b(features, features, 1, groups, groups)

    def forward(self, v, h):
      v_pre = self.vertical(v)
      down = F.pad(v_pre, (0, 0, 1, 0))[:, :, :-1]  # masked.down_shift
      h_out = self.out(gate(self.horizontal(h) + self.link(down)))
      return gate(v_pre), (h_out if self.first else h + h_out)

  class GatedPixelCNN(nn.Module):
    """masked.GatedPixelCNN (unconditional): x [B, C, H, W] -> logits [B, C·levels, H, W]."""

    def __init__(self, features, layers, output_features, colors, levels, first_kernel,
                 kernel):
      super().__init__()
      self.layers = nn.ModuleList(
          [GatedLayer(colors, features, first_kernel, colors, True)]
          + [GatedLayer(features, features, kernel, colors, False) for _ in range(layers)])
      self.output = OutputLayers(features, output_features, colors, levels)

    def forward(self, x):
      v = h = x
      for layer in self.layers:
        v, h = layer(v, h)
      return self.output(h)

  class ResNet(nn.Module):
    """flows.ResNet: conv 3×3, residual blocks of two convs, conv 3×3 out."""

    def __init__(self, cin, features, blocks, cout):
      super().__init__()
      self.conv_in = nn.Conv2d(cin, features, 3, padding=1)
      self.blocks = nn.ModuleList([nn.ModuleList([nn.Conv2d(features, features, 3, padding=1),
                                                  nn.Conv2d(features, features, 3, padding=1)])
                                   for _ in range(blocks)])
      self.conv_out = nn.Conv2d(features, cout, 3, padding=1)
      nn.init.zeros_(self.conv_out.weight)
      nn.init.zeros_(self.conv_out.bias)

    def forward(self, x):
      h = self.conv_in(x)
      for conv0, conv1 in self.blocks:
        h = h + conv1(F.relu(conv0(F.relu(h))))
      return self.conv_out(F.relu(h))

  class Coupling(nn.Module):
    """flows.AffineCoupling, checkerboard (mask fed as a channel) or channel-wise."""

    def __init__(self, mask, parity, channels, height, width, features, blocks):
      super().__init__()
      if mask == "checkerboard":
        b = np.asarray(flows.checkerboard_mask(height, width, parity))[..., 0][None, None]
      else:
        b = (np.arange(channels) < channels // 2).astype(np.float32)
        b = (b if parity == 0 else 1.0 - b)[None, :, None, None]
      self.checkerboard = mask == "checkerboard"
      self.register_buffer("b", torch.from_numpy(np.array(b, np.float32)))
      self.net = ResNet(channels + self.checkerboard, features, blocks, 2 * channels)
      self.scale = nn.Parameter(torch.ones(channels))

    def forward(self, x):
      net_in = x * self.b
      if self.checkerboard:
        net_in = torch.cat([net_in, self.b.expand(x.shape[0], 1, *x.shape[2:])], dim=1)
      raw_s, t = self.net(net_in).chunk(2, dim=1)
      s = self.scale[None, :, None, None] * torch.tanh(raw_s) * (1.0 - self.b)
      return x * torch.exp(s) + t * (1.0 - self.b), s.sum(dim=(1, 2, 3))

  class BatchNormFlow(nn.Module):
    """flows.BatchNorm in train mode: batch statistics, running averages, log-det."""

    def __init__(self, channels, momentum, epsilon):
      super().__init__()
      self.momentum, self.epsilon = momentum, epsilon
      self.log_gamma = nn.Parameter(torch.zeros(channels))
      self.beta = nn.Parameter(torch.zeros(channels))
      self.register_buffer("running_mean", torch.zeros(channels))
      self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x):
      mean = x.mean(dim=(0, 2, 3))
      var = (x - mean[None, :, None, None]).square().mean(dim=(0, 2, 3))
      with torch.no_grad():
        self.running_mean.lerp_(mean, 1.0 - self.momentum)
        self.running_var.lerp_(var, 1.0 - self.momentum)
      log_scale = self.log_gamma - 0.5 * torch.log(var + self.epsilon)
      y = (x - mean[None, :, None, None]) * torch.exp(log_scale)[None, :, None, None]
      log_det = x.shape[2] * x.shape[3] * log_scale.sum()
      return y + self.beta[None, :, None, None], log_det.expand(x.shape[0])

  def squeeze(x):
    """flows.squeeze in NCHW: channel index (row parity, column parity, channel)."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 3, 5, 1, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)

  class RealNVP(nn.Module):
    """flows.RealNVP with batch norm before every coupling: x -> (z, log-det)."""

    def __init__(self, shape, num_scales, features, blocks, momentum, epsilon):
      super().__init__()
      self.plan = flows.multiscale_plan(shape, num_scales)
      height, width, channels = shape
      norms, couplings = [], []
      for kind, arg in self.plan:
        if kind == "coupling":
          norms.append(BatchNormFlow(channels, momentum, epsilon))
          couplings.append(Coupling(arg[0], arg[1], channels, height, width, features,
                                    blocks))
        elif kind == "squeeze":
          height, width, channels = height // 2, width // 2, 4 * channels
        else:
          channels -= arg
      self.norms, self.couplings = nn.ModuleList(norms), nn.ModuleList(couplings)

    def forward(self, x):
      log_det, latents, index = torch.zeros(x.shape[0]), [], 0
      for kind, arg in self.plan:
        if kind == "coupling":
          x, ld_norm = self.norms[index](x)
          x, ld = self.couplings[index](x)
          log_det, index = log_det + ld_norm + ld, index + 1
        elif kind == "squeeze":
          x = squeeze(x)
        else:
          latents.append(x[:, :arg].permute(0, 2, 3, 1).reshape(x.shape[0], -1))
          x = x[:, arg:]
      latents.append(x.permute(0, 2, 3, 1).reshape(x.shape[0], -1))
      return torch.cat(latents, dim=-1), log_det

  return dict(PixelCNN=PixelCNN, GatedPixelCNN=GatedPixelCNN, RealNVP=RealNVP)


def make_adam(torch: Any, params, section: dict[str, Any]) -> tuple[Any, str]:
  """PyTorch Adam with a jaxgen optimizer section's settings: fused, else foreach."""
  kwargs = dict(lr=section["learning_rate"], betas=(section["b1"], section["b2"]),
                eps=section["eps"])
  try:
    return torch.optim.Adam(params, fused=True, **kwargs), "fused"
  except (RuntimeError, ValueError):
    return torch.optim.Adam(params, foreach=True, **kwargs), "foreach"


class TorchStep:
  """The PyTorch train step of a row, eager or under torch.compile."""

  def __init__(self, row: Row, jax_step: JaxgenStep, images_nhwc: np.ndarray,
               compiled: bool):
    ns = torch_models()
    self.torch = torch = ns["torch"]
    torch.manual_seed(0)
    self.row, self.compiled = row, compiled
    self.x = torch.from_numpy(np.ascontiguousarray(images_nhwc.transpose(0, 3, 1, 2)))
    self.optimizers: list[Any] = []
    self.adam: dict[str, str] = {}
    self.ema_updates = 0
    builder = {"vae": self._build_vae, "gan": self._build_gan, "ddpm": self._build_ddpm,
               "pixelcnn": self._build_pixelcnn, "realnvp": self._build_realnvp}
    self.modules, self._step = builder[row.method](ns, jax_step)
    self.param_sizes = sorted(p.numel() for m in self.modules for p in m.parameters())

  def _wrap(self, fn: Callable) -> Callable:
    return self.torch.compile(fn) if self.compiled else fn

  def _adam(self, name: str, params, section: dict[str, Any]):
    optimizer, kind = make_adam(self.torch, list(params), section)
    self.optimizers.append(optimizer)
    self.adam[name] = kind
    return optimizer

  def _build_vae(self, ns, jax_step: JaxgenStep):
    torch, m = self.torch, jax_step.config.model
    if (m.likelihood != "bernoulli" or m.activation != "relu" or m.beta != 1.0
        or m.kl_warmup_steps):
      raise ValueError("vs_pytorch mirrors the VAE with a Bernoulli decoder, ReLU, beta=1 "
                       "and no KL warm-up")
    vae = ns["VAE"](m.architecture, self.row.shape, m.latent_dim, tuple(m.hidden),
                    tuple(m.channels))
    self.output_shape = tuple(vae.decoder(torch.zeros(2, m.latent_dim)).shape)
    opt = self._adam("model", vae.parameters(), adam_settings(jax_step)["model"])
    loss_fn = self._wrap(vae.loss)
    x, latent = self.x, m.latent_dim

    def step():
      loss = loss_fn(x, torch.randn(x.shape[0], latent))
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
    return [vae], step

  def _build_gan(self, ns, jax_step: JaxgenStep):
    torch, F = self.torch, self.torch.nn.functional
    s = jax_step.method.eval_protocol["settings"]
    if (s["objective"], s["architecture"], s["generator_norm"], s["discriminator_norm"]) != (
        "non_saturating", "dcgan", "batch", "batch") or s["kind"] != "gan":
      raise ValueError("vs_pytorch mirrors the non-saturating DCGAN with batch norm")
    generator = ns["Generator"](s["latent_dim"], self.row.shape, tuple(s["generator_channels"]))
    discriminator = ns["Discriminator"](self.row.shape, tuple(s["discriminator_channels"]))
    self.output_shape = tuple(generator(torch.zeros(2, s["latent_dim"])).shape)
    adam = adam_settings(jax_step)
    opt_g = self._adam("generator", generator.parameters(), adam["generator"])
    opt_d = self._adam("discriminator", discriminator.parameters(), adam["discriminator"])
    g_params = list(generator.parameters())
    d_params = list(discriminator.parameters())
    ema = [p.detach().clone().zero_() for p in g_params]
    decay, n_critic, latent = s["ema_decay"], int(s["n_critic"]), s["latent_dim"]

    def critic_loss(real, z):
      with torch.no_grad():
        fake = generator(z)  # train mode: batch statistics, running averages updated
      real_logits, fake_logits = discriminator(real), discriminator(fake)
      return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
              + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))

    def generator_loss(z):
      return F.softplus(-discriminator(generator(z))).mean()  # -log D(G(z))

    critic_loss, generator_loss = self._wrap(critic_loss), self._wrap(generator_loss)
    x = self.x

    def step():
      for _ in range(n_critic):  # jaxgen: fresh fakes for every critic update
        loss = critic_loss(x, torch.randn(x.shape[0], latent))
        opt_d.zero_grad(set_to_none=True)
        loss.backward()
        opt_d.step()
      # jaxgen differentiates the generator's loss for G's weights only.
      for p in d_params:
        p.requires_grad_(False)
      loss = generator_loss(torch.randn(x.shape[0], latent))
      opt_g.zero_grad(set_to_none=True)
      loss.backward()
      opt_g.step()
      for p in d_params:
        p.requires_grad_(True)
      with torch.no_grad():
        torch._foreach_lerp_(ema, g_params, 1.0 - decay)  # pylint: disable=protected-access
    return [generator, discriminator], step

  def _build_ddpm(self, ns, jax_step: JaxgenStep):
    torch, m = self.torch, jax_step.config.model
    if (m.architecture, m.prediction, m.loss, m.schedule, m.variance) != (
        "unet", "epsilon", "simple", "linear", "fixed_small") or m.conditional or (
        m.guidance != "none"):
      raise ValueError("vs_pytorch mirrors the unconditional ε-prediction DDPM U-Net")
    net = ns["UNet"](self.row.shape, m.channels, tuple(m.channel_mults), m.num_res_blocks,
                     tuple(m.attention_resolutions), m.heads, m.norm_groups)
    self.output_shape = tuple(net(self.x[:2], torch.zeros(2, dtype=torch.long)).shape)
    section = adam_settings(jax_step)["model"]
    opt = self._adam("model", net.parameters(), section)
    params = list(net.parameters())
    ema = [p.detach().clone() for p in params]
    timesteps = int(m.timesteps)
    betas = torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64)  # Ho et al.
    alpha_bars = torch.cumprod(1.0 - betas, dim=0)
    sqrt_ab = alpha_bars.sqrt().float()
    sqrt_1mab = (1.0 - alpha_bars).sqrt().float()

    def loss_fn(x0, t, noise):
      x_t = sqrt_ab[t][:, None, None, None] * x0 + sqrt_1mab[t][:, None, None, None] * noise
      return (net(x_t, t) - noise).square().mean(dim=(1, 2, 3)).mean()

    loss_fn = self._wrap(loss_fn)
    x, clip = self.x, section["grad_clip_norm"]

    def step():
      t = torch.randint(0, timesteps, (x.shape[0],))
      loss = loss_fn(x, t, torch.randn_like(x))
      opt.zero_grad(set_to_none=True)
      loss.backward()
      if clip:
        torch.nn.utils.clip_grad_norm_(params, clip, foreach=True)
      opt.step()
      n = self.ema_updates
      decay = min(m.ema_decay, (1.0 + n) / (10.0 + n))  # jaxgen's EMA warm-up
      with torch.no_grad():
        torch._foreach_lerp_(ema, params, 1.0 - decay)  # pylint: disable=protected-access
      self.ema_updates += 1
    return [net], step

  def _build_pixelcnn(self, ns, jax_step: JaxgenStep):
    torch, F, m = self.torch, self.torch.nn.functional, jax_step.config.model
    if m.conditional:
      raise ValueError("vs_pytorch mirrors the unconditional PixelCNN")
    colors, levels = self.row.shape[-1], 2 if self.row.binary else self.row.levels
    kind = "GatedPixelCNN" if m.architecture == "gated" else "PixelCNN"
    net = ns[kind](m.features, m.layers, m.output_features, colors, levels,
                   m.first_kernel, m.kernel)
    self.output_shape = tuple(net(self.x[:2]).shape)
    opt = self._adam("model", net.parameters(), adam_settings(jax_step)["model"])
    # jaxgen feeds the level indices mapped to [-1, 1] and reads a softmax per value.
    targets = torch.round(self.x * (levels - 1)).long()
    inputs = targets.float() * (2.0 / (levels - 1)) - 1.0

    def loss_fn(x, k):
      logits = net(x)  # [B, C·L, H, W], group-major
      b, _, h, w = logits.shape
      logits = logits.reshape(b, colors, levels, h, w).transpose(1, 2)  # [B, L, C, H, W]
      return F.cross_entropy(logits, k, reduction="sum") / b  # mean over images of −log p

    loss_fn = self._wrap(loss_fn)

    def step():
      loss = loss_fn(inputs, targets)
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
    return [net], step

  def _build_realnvp(self, ns, jax_step: JaxgenStep):
    torch, m = self.torch, jax_step.config.model
    if m.normalization != "batch" or m.architecture not in ("auto", "multiscale") or (
        m.preprocessing not in ("auto", "logit")):
      raise ValueError("vs_pytorch mirrors the multi-scale RealNVP with batch norm and the "
                       "logit pre-processing")
    h, w, c = self.row.shape
    flow = ns["RealNVP"](self.row.shape, m.num_scales, m.features, m.blocks,
                         m.batch_norm_momentum, m.batch_norm_epsilon)
    self.output_shape = tuple(flow(self.x[:2])[0].shape)
    opt = self._adam("model", flow.parameters(), adam_settings(jax_step)["model"])
    kernels = [p for name, p in flow.named_parameters() if name.endswith("weight")]
    levels, alpha, dims = self.row.levels, m.alpha, h * w * c
    k = torch.round(self.x * (levels - 1))

    def loss_fn(u):
      # losses.logit_transform of the dequantized data, the flow, and bits/dim
      # of the integer grid (codec.bits_per_dim), plus the L2 term on kernels.
      p = alpha + (1.0 - 2.0 * alpha) * (k + u) / levels
      y = torch.log(p) - torch.log1p(-p)
      log_det_pre = (math.log(1.0 - 2.0 * alpha) - torch.log(p) - torch.log1p(-p)).sum(
          dim=(1, 2, 3))
      z, log_det = flow(y)
      nats = 0.5 * (z.square() + math.log(2 * math.pi)).sum(dim=-1) - log_det - log_det_pre
      bits = (nats / dims - math.log(1.0 / levels)) / math.log(2.0)
      return bits.mean() + m.l2_weight * sum(w.square().sum() for w in kernels)

    loss_fn = self._wrap(loss_fn)

    def step():
      loss = loss_fn(torch.rand(self.x.shape))
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
    return [flow], step

  def run(self, steps: int) -> None:
    for _ in range(steps):
      self._step()


# ------------------------------------------------------------------ checks
def check_parity(row: Row, jax_step: JaxgenStep, torch_step: TorchStep) -> dict[str, Any]:
  """Asserts equal parameter tensors (sizes, as a multiset) and output shapes."""
  assert jax_step.param_sizes == torch_step.param_sizes, (
      f"{row.description}: parameter tensors differ: jaxgen "
      f"{sum(jax_step.param_sizes)} in {len(jax_step.param_sizes)} tensors, torch "
      f"{sum(torch_step.param_sizes)} in {len(torch_step.param_sizes)}")
  height, width, c = row.shape
  levels = 2 if row.binary else row.levels
  expected = {"vae": (2, c, height, width), "gan": (2, c, height, width),
              "ddpm": (2, c, height, width), "pixelcnn": (2, c * levels, height, width),
              "realnvp": (2, height * width * c)}[row.method]
  assert torch_step.output_shape == expected, (
      f"{row.description}: torch output {torch_step.output_shape} != {expected}")
  jax_shape = jax_step.output_shape()
  if jax_shape is not None:
    assert tuple(jax_shape[1:]) == (height, width, c), (
        f"{row.description}: jaxgen output {jax_shape} is not [N, {height}, {width}, {c}]")
  return {"jaxgen": sum(jax_step.param_sizes), "torch": sum(torch_step.param_sizes),
          "tensors": len(jax_step.param_sizes)}


def parity(row: Row) -> dict[str, Any]:
  """Builds both sides of a row (no train step) and checks them: parameter counts."""
  images = synthetic_images(row)
  jax_step = JaxgenStep(row, images, shapes_only=True)
  return check_parity(row, jax_step, TorchStep(row, jax_step, images, compiled=False))


# ------------------------------------------------------------------ timing
def seconds_of(fn: Callable[[], Any]) -> float:
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def first_step(name: str, build: Callable[[], Any]) -> tuple[Any, float | None, str | None]:
  """Builds an implementation and times its first step; (runner, seconds, error)."""
  try:
    runner = build()
    return runner, seconds_of(lambda: runner.run(1)), None
  except Exception as error:  # pylint: disable=broad-except
    if name != "torch_compile":
      raise
    # torch.compile needs a working C++ toolchain and may not support every op.
    message = str(error).strip().splitlines()
    return None, None, f"{type(error).__name__}: {message[0] if message else ''}"[:500]


def benchmark_row(row: Row, rounds: int, steps: int, warmup: int,
                  use_compile: bool) -> dict[str, Any]:
  """Builds both sides, checks parity, then times interleaved rounds."""
  images = synthetic_images(row)
  runners: dict[str, Any] = {}
  first: dict[str, float | None] = {}
  runners["jaxgen"], first["jaxgen"], _ = first_step(
      "jaxgen", lambda: JaxgenStep(row, images))
  jax_step = runners["jaxgen"]
  runners["torch_eager"], first["torch_eager"], _ = first_step(
      "torch_eager", lambda: TorchStep(row, jax_step, images, compiled=False))
  parameters = check_parity(row, jax_step, runners["torch_eager"])
  compile_error = "skipped (--no-compile)"
  if use_compile:
    runners["torch_compile"], first["torch_compile"], compile_error = first_step(
        "torch_compile", lambda: TorchStep(row, jax_step, images, compiled=True))
    if runners["torch_compile"] is None:
      del runners["torch_compile"]
  for runner in runners.values():
    runner.run(warmup)
  names = list(runners)
  rates: dict[str, list[float]] = {name: [] for name in names}
  for r in range(rounds):
    for name in names[r % len(names):] + names[:r % len(names)]:  # rotate the order
      rates[name].append(steps / seconds_of(lambda n=name: runners[n].run(steps)))
  median = {name: statistics.median(values) for name, values in rates.items()}
  eager = runners["torch_eager"]
  return {
      "description": row.description, "method": row.method, "data_defaults": row.data,
      "overrides": list(row.overrides), "batch_size": row.batch_size,
      "shape": list(row.shape), "parameters": parameters,
      "torch_adam": eager.adam,
      "n_critic": (int(jax_step.method.eval_protocol["settings"]["n_critic"])
                   if row.method == "gan" else None),
      "steps_per_round": steps, "rounds": rounds, "warmup_steps": warmup,
      "time_to_first_step_seconds": first,
      "steps_per_sec": median,
      "examples_per_sec": {name: rate * row.batch_size for name, rate in median.items()},
      "steps_per_sec_by_round": rates,
      "ratio": {
          "jaxgen_over_eager": median["jaxgen"] / median["torch_eager"],
          "jaxgen_over_compile": (median["jaxgen"] / median["torch_compile"]
                                  if "torch_compile" in median else None)},
      "torch_compile_error": None if "torch_compile" in runners else compile_error,
  }


def markdown_table(rows: dict[str, dict[str, Any]]) -> str:
  """The README/docs table of a results dict."""
  lines = ["| row (batch) | jaxgen steps/s | PyTorch eager | torch.compile | "
           "jaxgen / eager | jaxgen / compile |", "|---|---|---|---|---|---|"]
  for name, r in rows.items():
    rate, ratio = r["steps_per_sec"], r["ratio"]
    compiled = f"{rate['torch_compile']:.3g}" if "torch_compile" in rate else "n/a"
    over_compile = (f"{ratio['jaxgen_over_compile']:.2f}"
                    if ratio["jaxgen_over_compile"] is not None else "n/a")
    lines.append(f"| {name} ({r['batch_size']}) | {rate['jaxgen']:.3g} | "
                 f"{rate['torch_eager']:.3g} | {compiled} | "
                 f"{ratio['jaxgen_over_eager']:.2f} | {over_compile} |")
  return "\n".join(lines)


# ------------------------------------------------------------------ figure
REPO = pathlib.Path(__file__).resolve().parents[1]
FIGURE = REPO / "docs" / "figures" / "vs_pytorch.png"
# The two results files docs/performance.md shows, in its order: a full run that
# rewrites one of them redraws the chart from both.
FIGURE_SOURCES = (common.RESULTS / "vs_pytorch.json",
                  common.RESULTS / "vs_pytorch_likelihood.json")
BAR_LABELS = {"jaxgen": "jaxgen", "torch_eager": "PyTorch eager",
              "torch_compile": "torch.compile"}
BAR_COLOURS = {"jaxgen": "tab:blue", "torch_eager": "tab:orange", "torch_compile": "tab:green"}


def read_results(path: str | pathlib.Path) -> dict[str, Any]:
  """A saved results JSON of this benchmark; ValueError (one line) if it is not one."""
  import json  # pylint: disable=import-outside-toplevel
  path = pathlib.Path(path)
  try:
    results = json.loads(path.read_text())
  except (OSError, ValueError) as error:
    raise ValueError(f"cannot read {path}: {type(error).__name__}") from error
  if not isinstance(results, dict) or results.get("benchmark") != "vs_pytorch" or not (
      isinstance(results.get("rows"), dict) and results["rows"]):
    raise ValueError(f"{path} is not a vs_pytorch results file with rows")
  return results


def draw_figure(sources: Sequence[tuple[str, dict[str, Any]]]) -> Any:
  """Grouped bars of train steps/s (log scale) per row: jaxgen, PyTorch eager and
  torch.compile, one panel per results file (one run each, named in its title).

  sources: (name, results) pairs; a row already drawn from an earlier source is
  left out of later ones. Returns a matplotlib Figure (no pyplot, no GUI backend).
  """
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  panels, seen = [], set()
  for name, results in sources:
    rows = {row: r for row, r in results["rows"].items() if row not in seen}
    seen.update(rows)
    if rows:
      panels.append((name, results, rows))
  heights = [len(rows) + 1.2 for _, _, rows in panels]
  fig = Figure(figsize=(7.5, 0.55 * sum(heights) + 0.9), dpi=80)
  axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True,
                      gridspec_kw={"height_ratios": heights})[:, 0]
  width = 0.27
  all_rates = [rate for _, _, rows in panels for r in rows.values()
               for rate in r["steps_per_sec"].values()]
  low, high = min(1.0, min(all_rates) / 2), max(all_rates) * 4  # room for the labels
  for ax, (name, results, rows) in zip(axes, panels):
    for i, (row, r) in enumerate(rows.items()):
      rates = r["steps_per_sec"]
      for j, impl in enumerate(IMPLEMENTATIONS):
        y = i + (j - 1) * width
        if impl not in rates:
          ax.text(low * 1.1, y, f"{BAR_LABELS[impl]}: n/a "
                  f"({'not run' if 'skipped' in str(r.get('torch_compile_error')) else 'failed'})",
                  va="center", fontsize=6.5, color="0.35")
          continue
        ax.barh(y, rates[impl], height=width, color=BAR_COLOURS[impl],
                label=BAR_LABELS[impl] if i == 0 else None)
        text = f"{rates[impl]:.3g}"
        if impl == "jaxgen":
          text += f"  ({r['ratio']['jaxgen_over_eager']:.2f}x eager)"
        ax.text(rates[impl] * 1.06, y, text, va="center", fontsize=6.5)
    ax.set_yticks(range(len(rows)), [f"{row} ({r['batch_size']})" for row, r in rows.items()],
                  fontsize=7.5)
    ax.invert_yaxis()
    ax.set_xscale("log")
    start, end = results.get("load_average_1min_start"), results.get("load_average_1min_end")
    load = f", load {start:.1f} to {end:.1f}" if start is not None and end is not None else ""
    ax.set_title(f"{name}: {results['machine']['date']}, {results['settings']['rounds']} "
                 f"rounds, medians{load}", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
  axes[-1].legend(loc="center right", fontsize=7)
  axes[-1].set_xlabel("train steps/s (log scale; longer is faster)", fontsize=8)
  axes[-1].set_xlim(low, high)
  fig.tight_layout()
  return fig


def write_figure(paths: Sequence[str | pathlib.Path], out: str | pathlib.Path) -> pathlib.Path:
  """Draws `draw_figure` from saved results files into a small palette PNG at `out`."""
  sources = []
  for path in paths:
    path = pathlib.Path(path).resolve()
    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
    sources.append((str(shown), read_results(path)))
  out = pathlib.Path(out)
  out.parent.mkdir(parents=True, exist_ok=True)
  draw_figure(sources).savefig(out)
  from PIL import Image  # pylint: disable=import-outside-toplevel
  with Image.open(out) as image:   # a palette keeps it tens of KB
    small = image.convert("RGB").quantize(colors=64)
  small.save(out, optimize=True)
  print(f"wrote {out}")
  return out


def figure_sources(written: pathlib.Path) -> list[pathlib.Path]:
  """What a run that wrote `written` draws: both files docs/performance.md shows, in
  its order, when `written` is one of them (the other one if it exists); else `written`."""
  written = written.resolve()
  standard = [p.resolve() for p in FIGURE_SOURCES]
  if written not in standard:
    return [written]
  return [p for p in standard if p == written or p.is_file()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rows", default=",".join(ROWS),
                      help=f"comma-separated, from: {', '.join(ROWS)}")
  parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds")
  parser.add_argument("--steps", type=int, default=0,
                      help="steps per implementation per round (0: each row's default)")
  parser.add_argument("--warmup", type=int, default=3, help="untimed steps after the first")
  parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                      help="PyTorch intra-op threads, and the cores both may run on "
                           "(default: every core this process may use)")
  parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: 2 rounds of 2 steps, 1 warm-up step")
  parser.add_argument("--parity-only", action="store_true",
                      help="only build both sides of each row and check their parity")
  parser.add_argument("--out", default=None, help="default: benchmarks/results/vs_pytorch.json")
  parser.add_argument("--figure", default=None,
                      help="draw the bar chart here after the run (default: "
                           "docs/figures/vs_pytorch.png, after a full run whose --out is "
                           "one of the two files docs/performance.md shows)")
  parser.add_argument("--figure-only", nargs="+", metavar="FILE", default=None,
                      help="time nothing: draw the bar chart from saved results files "
                           "(one panel each) into --figure")
  args = parser.parse_args(argv)
  for path in args.figure_only or ():
    try:
      read_results(path)
    except ValueError as error:
      parser.error(str(error))
  unknown = [name for name in args.rows.split(",") if name not in ROWS]
  if unknown:
    parser.error(f"unknown rows {unknown}; choose from {', '.join(ROWS)}")
  if args.quick:
    args.rounds, args.steps, args.warmup = 2, 2, 1
  if args.rounds < 1 or args.steps < 0 or args.warmup < 0 or args.threads < 1:
    parser.error("--rounds and --threads must be >= 1, --steps and --warmup >= 0")
  return args


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  args = parse_args(argv)
  if args.figure_only:
    return {"figure": str(write_figure(args.figure_only, args.figure or FIGURE))}
  # XLA sizes its CPU thread pool by the cores this process may run on, when
  # its backend starts (below, at the first jax call): fewer threads for
  # PyTorch means fewer cores for both.
  cores = sorted(os.sched_getaffinity(0))
  if args.threads < len(cores):
    cores = cores[:args.threads]
    os.sched_setaffinity(0, cores)
  try:
    import torch  # pylint: disable=import-outside-toplevel
  except ImportError:
    sys.exit("vs_pytorch needs PyTorch (CPU): pip install -e '.[bench]'")
  torch.set_num_threads(args.threads)
  if args.parity_only:
    counts = {name: parity(ROWS[name]) for name in args.rows.split(",")}
    for name, count in counts.items():
      print(f"{name}: {count['jaxgen']} parameters in {count['tensors']} tensors, "
            f"equal on both sides")
    return {"parity": counts}
  results: dict[str, Any] = {
      "benchmark": "vs_pytorch", "machine": common.machine(),
      "versions": common.versions("jax", "jaxlib", "flax", "optax", "torch", "numpy"),
      "threads": {
          "cpu_count": os.cpu_count(), "cores_used": cores,
          "torch_intra_op": torch.get_num_threads(),
          "torch_inter_op": torch.get_num_interop_threads(),
          "jax": "XLA's own CPU thread pool, sized by XLA to cores_used",
          "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")},
      "settings": {"rounds": args.rounds, "steps": args.steps or "per row",
                   "warmup": args.warmup, "quick": args.quick,
                   "torch_compile": not args.no_compile},
      "load_average_1min_start": os.getloadavg()[0], "rows": {}}
  for name in args.rows.split(","):
    row = ROWS[name]
    print(f"{name}: {row.description}", flush=True)
    results["rows"][name] = benchmark_row(row, args.rounds, args.steps or row.steps,
                                          args.warmup, not args.no_compile)
    print(markdown_table({name: results["rows"][name]}).splitlines()[-1], flush=True)
  results["load_average_1min_end"] = os.getloadavg()[0]
  results["peak_rss_mib"] = common.peak_rss_mib()
  results["table"] = markdown_table(results["rows"])
  written = common.write("vs_pytorch", results, args.out)
  print(results["table"])
  standard = written.resolve() in {p.resolve() for p in FIGURE_SOURCES}
  figure = args.figure or (FIGURE if standard and not args.quick else None)
  if figure:
    results["figure"] = str(write_figure(figure_sources(written), figure))
  return results


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
  main()
