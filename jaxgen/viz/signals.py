"""Signals [N, T, C]: line plots (generated beside real) and .wav files (stdlib `wave`)."""

from __future__ import annotations

import pathlib
import wave
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from jaxgen.data import codec


def waveform(samples: np.ndarray, spec: Any) -> np.ndarray:
  """Signals in the data's space -> the waveform: μ-law companded data are expanded."""
  samples = np.asarray(samples, np.float32)
  if getattr(spec, "companding", "none") == "mu_law":
    return codec.mu_law_expand(samples)
  return samples


def save_signals(path: str | pathlib.Path, samples: np.ndarray,
                 reference: np.ndarray | None = None, title: str = "",
                 rows: int = 6, sample_rate: float | None = None) -> pathlib.Path:
  """Plots up to `rows` signals [N, T, C] (channel 0), one per row; with `reference`
  ([M, T', C], e.g. test signals) in a left column beside the samples."""
  columns = [("generated", np.asarray(samples))]
  if reference is not None:
    columns.insert(0, ("data", np.asarray(reference)))
  rows = min(rows, *(len(signals) for _, signals in columns))
  # A bare Figure (no pyplot): no GUI backend is touched, in scripts or notebooks.
  fig = Figure(figsize=(3.2 * len(columns), 0.9 * rows + 0.6), dpi=80)
  axes = fig.subplots(rows, len(columns), squeeze=False, sharey=True)
  for c, (name, signals) in enumerate(columns):
    for r in range(rows):
      ax = axes[r, c]
      signal = signals[r].reshape(signals.shape[1], -1)[:, 0]
      ax.plot(np.arange(len(signal)), signal, lw=0.6, c="tab:blue" if c == len(columns) - 1
              else "0.3")
      ax.set_ylim(-1.05, 1.05)
      ax.tick_params(labelsize=6)
      if r < rows - 1:
        ax.set_xticklabels([])
    axes[0, c].set_title(name, fontsize=8)
  unit = f"samples ({sample_rate:g} Hz)" if sample_rate else "samples"
  for c in range(len(columns)):
    axes[-1, c].set_xlabel(unit, fontsize=7)
  if title:
    fig.suptitle(title, fontsize=9)
  fig.tight_layout()
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path)
  return path


def write_wav(path: str | pathlib.Path, signal: np.ndarray, sample_rate: float) -> pathlib.Path:
  """One signal [T] or [T, C] with values in [-1, 1] as 16-bit PCM (clipped)."""
  signal = np.asarray(signal, np.float64)
  if signal.ndim == 1:
    signal = signal[:, None]
  if signal.ndim != 2 or not sample_rate or sample_rate <= 0:
    raise ValueError(f"write_wav needs a signal [T] or [T, C] and a sample rate > 0, got "
                     f"shape {signal.shape} at {sample_rate}")
  pcm = np.rint(np.clip(signal, -1.0, 1.0) * 32767).astype("<i2")
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  with wave.open(str(path), "wb") as out:
    out.setnchannels(pcm.shape[1])
    out.setsampwidth(2)
    out.setframerate(int(round(sample_rate)))
    out.writeframes(pcm.tobytes())
  return path


def write_wavs(folder: str | pathlib.Path, samples: np.ndarray, spec: Any,
               prefix: str = "sample") -> list[pathlib.Path]:
  """Each signal of samples [N, T, C] (data space) as folder/prefix_000.wav, ...; needs
  `spec.sample_rate`."""
  folder = pathlib.Path(folder)
  signals = waveform(samples, spec)
  return [write_wav(folder / f"{prefix}_{i:03d}.wav", signal, spec.sample_rate)
          for i, signal in enumerate(signals)]
