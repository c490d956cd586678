"""Generated one-dimensional signals (`seq1d:<kind>`) for sequence models such as WaveNet.

Every kind is a family of random signals in [-1, 1] whose structure reaches
far back in time (periods of up to 64 samples, slow envelopes of up to 256),
plus a little white noise so that no sample is a deterministic function of
the past. Frequencies are in cycles per sample; `SAMPLE_RATE` only says how
fast to play them (the `.wav` files `jaxgen sample` writes).
"""

from __future__ import annotations

import numpy as np

from jaxgen.data._options import DataOptions
from jaxgen.data._splits import ArraySplit, RawData

NUM_TEST = 1_000
DEFAULT_LENGTH = 256
SAMPLE_RATE = 8_000  # nominal: a period of 8..64 samples is 125..1000 Hz
NOISE_STD = 0.01
AR_BURN_IN = 256

KINDS = {
    "sines": "sums of 3 sinusoids, periods 8..64 samples (log-uniform), random phases and "
             "amplitudes, + white noise (std 0.01); 256 samples at a nominal 8 kHz",
    "ar": "AR(2) processes with a resonance: poles at radius 0.9..0.99 and period "
          "4..40 samples, scaled to std 0.25 (clipped to [-1, 1])",
    "am": "amplitude-modulated tones: a carrier of period 4..16 samples under a "
          "sinusoidal envelope of period 64..256 samples, + white noise (std 0.01)",
    "mixture": "each example one of sines / ar / am with equal probability; "
               "label = the kind (0, 1, 2), for class-conditional models",
}
MIXTURE_KINDS = ("sines", "ar", "am")


def _log_uniform(rng: np.random.Generator, low: float, high: float, size) -> np.ndarray:
  return np.exp(rng.uniform(np.log(low), np.log(high), size))


def sines(rng: np.random.Generator, count: int, length: int) -> np.ndarray:
  """[count, length] sums of three sinusoids with random periods, phases and amplitudes."""
  t = np.arange(length)[None, None, :]
  periods = _log_uniform(rng, 8.0, 64.0, (count, 3, 1))
  phases = rng.uniform(0.0, 2 * np.pi, (count, 3, 1))
  amplitudes = rng.uniform(0.2, 1.0, (count, 3, 1))
  amplitudes *= 0.8 / amplitudes.sum(axis=1, keepdims=True)  # peak at most 0.8
  x = (amplitudes * np.sin(2 * np.pi * t / periods + phases)).sum(axis=1)
  return x + NOISE_STD * rng.standard_normal((count, length))


def autoregressive(rng: np.random.Generator, count: int, length: int) -> np.ndarray:
  """[count, length] AR(2): x_t = a1 x_{t−1} + a2 x_{t−2} + ε_t with complex poles r e^{±iθ}."""
  radius = rng.uniform(0.9, 0.99, count)
  theta = 2 * np.pi / rng.uniform(4.0, 40.0, count)
  a1, a2 = 2 * radius * np.cos(theta), -radius**2
  noise = rng.standard_normal((count, length + AR_BURN_IN))
  x = np.zeros((count, length + AR_BURN_IN))
  for t in range(2, length + AR_BURN_IN):  # vectorised over examples; T numpy steps
    x[:, t] = a1 * x[:, t - 1] + a2 * x[:, t - 2] + noise[:, t]
  x = x[:, AR_BURN_IN:]
  # The stationary variance of an AR(2) (Box & Jenkins), to scale every
  # process to std 0.25 whatever its poles.
  variance = (1 - a2) / ((1 + a2) * ((1 - a2)**2 - a1**2))
  return np.clip(0.25 * x / np.sqrt(variance)[:, None], -1.0, 1.0)


def amplitude_modulated(rng: np.random.Generator, count: int, length: int) -> np.ndarray:
  """[count, length] (0.55 + 0.45 sin(envelope)) · 0.8 sin(carrier) + noise."""
  t = np.arange(length)[None, :]
  carrier = _log_uniform(rng, 4.0, 16.0, (count, 1))
  envelope = rng.uniform(64.0, 256.0, (count, 1))
  phase_c, phase_e = rng.uniform(0.0, 2 * np.pi, (2, count, 1))
  depth = 0.45 * np.sin(2 * np.pi * t / envelope + phase_e) + 0.55
  x = 0.8 * depth * np.sin(2 * np.pi * t / carrier + phase_c)
  return x + NOISE_STD * rng.standard_normal((count, length))


GENERATORS = {"sines": sines, "ar": autoregressive, "am": amplitude_modulated}


def sample(kind: str, count: int, length: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
  """float32 signals [count, length, 1] in [-1, 1] of one kind, and int32 labels (mixture only)."""
  if kind == "mixture":
    labels = rng.integers(len(MIXTURE_KINDS), size=count).astype(np.int32)
    x = np.zeros((count, length))
    for label, name in enumerate(MIXTURE_KINDS):
      rows = np.flatnonzero(labels == label)
      x[rows] = GENERATORS[name](rng, len(rows), length)
  else:
    labels, x = None, GENERATORS[kind](rng, count, length)
  x = np.clip(x, -1.0, 1.0).astype(np.float32)[..., None]
  return x, labels


def load(kind: str, options: DataOptions) -> RawData:
  """Train/test splits of a seq1d kind, generated from options.generate_seed."""
  length = options.length or DEFAULT_LENGTH
  num_train, num_test = options.num_examples, NUM_TEST
  if options.max_examples:
    num_train = min(num_train, options.max_examples)
    num_test = min(num_test, options.max_examples)
  code = list(KINDS).index(kind)
  train = sample(kind, num_train, length, np.random.default_rng([options.generate_seed, 0, code]))
  test = sample(kind, num_test, length, np.random.default_rng([options.generate_seed, 1, code]))
  return RawData(train=ArraySplit(*train), test=ArraySplit(*test), is_image=False,
                 levels=None, num_classes=len(MIXTURE_KINDS) if kind == "mixture" else None,
                 is_sequence=True, sample_rate=float(SAMPLE_RATE))
