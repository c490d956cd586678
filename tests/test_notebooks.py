"""The notebooks run and show what they say: their figures and plausible numbers.

Training is shortened (`STEPS`), so the numbers are checked against ranges
that a VAE on the 8×8 digits reaches in that many steps — and against the
untrained model's, so a notebook that stopped training would fail.
"""

import ast
import contextlib
import io
import json
import math
import os
import pathlib
import re

import jax
import matplotlib
import matplotlib.image
import pytest

import jaxgen
from jaxgen.engine import loop as engine_loop

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
QUICKSTART = NOTEBOOKS[0].parent / "quickstart.ipynb"
LIKELIHOOD = NOTEBOOKS[0].parent / "likelihood.ipynb"
AUTOENCODERS = NOTEBOOKS[0].parent / "autoencoders.ipynb"
VAE = NOTEBOOKS[0].parent / "vae.ipynb"
STEPS = 300
# Notebooks with a cell tagged "parameters" run with these values in its place.
PARAMETERS = {
    "likelihood.ipynb": "PIXELCNN_STEPS = 40\nVAE_STEPS = 200\nVAE_IMPORTANCE = 50\n"
                        "REALNVP_STEPS = 20\nTOY_STEPS = 150\n",
    "boltzmann.ipynb": "RBM_STEPS = 150\nSMALL_RBM_STEPS = 100\nAIS_COUNTS = (5, 20, 50)\n"
                       "TEMPERATURES = (10, 1000)\nEM_ITERATIONS = 20\nSIZES = (20, 320)\n"
                       "SEEDS = 2\nLR_STEPS = 150\n",
    "autoencoders.ipynb": "AE_STEPS = 300\nSTEPS = 100\nHELD_OUT = 4\n",
    "vae.ipynb": "VAE_STEPS = 200\nBETA_STEPS = 150\nBETAS = (1.0, 4.0)\n",
    "gans.ipynb": "RING_STEPS = 100\nDCGAN_STEPS = 200\nFID_SAMPLES = 200\n",
    "diffusion.ipynb": "STEPS = 300\nTIMESTEPS = 50\nFID_SAMPLES = 200\nSTEP_COUNTS = (5, 20)\n"
                       "PER_CLASS = 10\nBOUND_EXAMPLES = 20\n",
}


def run_notebook(path, monkeypatch, figures_dir):
  """Runs the code cells with training shortened; returns (stdout, figure files)."""
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  fit = jaxgen.fit
  figures = []

  def short_fit(config, **kwargs):
    config.train.steps = min(config.train.steps, STEPS)
    # One device, as on a user's CPU: the session's four fake devices make every
    # fit's compilation ~30% dearer (autoencoders.ipynb: 32 s -> 23 s of CPU).
    config.train.num_devices = 1
    return fit(config, **kwargs)

  def show(*args, **kwargs):
    del args, kwargs
    figure = plt.gcf()
    if figure.axes:  # a figure with something drawn on it
      figures.append(figures_dir / f"figure_{len(figures)}.png")
      figure.savefig(figures[-1])
    plt.close(figure)

  monkeypatch.setattr(jaxgen, "fit", short_fit)
  # `jaxgen.train` reaches the engine's fit without passing `jaxgen.fit`.
  engine_fit = engine_loop.fit

  def one_device_fit(config, **kwargs):
    config.train.num_devices = 1
    return engine_fit(config, **kwargs)

  monkeypatch.setattr(engine_loop, "fit", one_device_fit)
  monkeypatch.setattr(plt, "show", show)
  cells = json.loads(path.read_text())["cells"]
  namespace: dict = {}
  out = io.StringIO()
  # Notebooks train for hundreds of steps: XLA's optimizations back on (the
  # suite turns them off because compiling dominates its other tests).
  optimized = jax.config.read("jax_disable_most_optimizations")
  jax.config.update("jax_disable_most_optimizations", False)
  with contextlib.redirect_stdout(out), contextlib.ExitStack() as restore:
    restore.callback(jax.config.update, "jax_disable_most_optimizations", optimized)
    for cell in cells:
      if cell["cell_type"] == "code":
        source = "".join(cell["source"])
        if "parameters" in cell["metadata"].get("tags", ()) and path.name in PARAMETERS:
          source = PARAMETERS[path.name]
        exec(compile(source, f"{path.name}", "exec"), namespace)  # noqa: S102
  return out.getvalue(), figures


def _drawn(figure):
  """Whether a saved figure shows something: a blank canvas is one colour.

  (Its file size is no test: a grid of binarized digits compresses to 1.7 KB.)
  """
  pixels = matplotlib.image.imread(figure)[..., :3]
  colours = {tuple(p) for p in pixels.reshape(-1, 3)[::7].round(2).tolist()}
  inked = (abs(pixels - pixels[0, 0]).sum(-1) > 0.1).mean()
  return len(colours) >= 2 and inked > 0.005


def _shown_figures(path):
  """How many `plt.show()` calls the notebook's code makes."""
  cells = json.loads(path.read_text())["cells"]
  return sum("".join(c["source"]).count("plt.show()") for c in cells
             if c["cell_type"] == "code")


def check_quickstart_numbers(printed):
  """The quickstart prints the test ELBO of a trained VAE and of eight seeds."""
  # print(result.metrics["eval"]) shows a dict with the test ELBO (nats).
  shown = ast.literal_eval(re.search(r"\{'elbo'.*?\}", printed).group(0))
  assert set(shown) >= {"elbo", "kl", "reconstruction", "nll_bound_bits_per_dim"}
  assert shown["elbo"] == pytest.approx(shown["reconstruction"] - shown["kl"], abs=1e-3)
  # The untrained model's test ELBO is about -44 nats; the notebook's full
  # 1,500 steps reach about -23. After 300 steps it lies in between.
  assert -32.0 < shown["elbo"] < -22.0, shown
  # The eight-seed study prints mean ± spread over seeds.
  mean, spread = map(float, re.search(
      r"test ELBO over 8 seeds: (-?[\d.]+) ± ([\d.]+) nats", printed).groups())
  assert -32.0 < mean < -22.0 and 0.0 < spread < 2.0, (mean, spread)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_shows_its_figures_and_numbers(path, monkeypatch, tmp_path):
  printed, figures = run_notebook(path, monkeypatch, tmp_path)
  assert len(figures) == _shown_figures(path) > 0
  for figure in figures:
    assert _drawn(figure), figure
  if path == QUICKSTART:
    check_quickstart_numbers(printed)
  if path == LIKELIHOOD:
    check_likelihood_numbers(printed)
  if path.name == "boltzmann.ipynb":
    check_boltzmann_numbers(printed)
  if path == AUTOENCODERS:
    check_autoencoders_numbers(printed)
  if path == VAE:
    check_vae_numbers(printed)
  if path.name == "gans.ipynb":
    check_gan_numbers(printed)
  if path.name == "diffusion.ipynb":
    check_diffusion_numbers(printed)


def check_likelihood_numbers(printed, trained=False):
  """Exact NLLs below the uniform model's, the VAE's estimate inside its bound,
  completion keeping what it was given, a normalized 2-D density."""
  uniform = 64 * math.log(2)
  exact = float(re.search(r"PixelCNN exact test NLL: ([\d.]+) nats", printed).group(1))
  table = dict((name.strip(), float(value)) for name, value in re.findall(
      r"^(PixelCNN \(exact\)|VAE, importance-sampled \(K=\d+\)|VAE, -ELBO \(a bound\)|"
      r"uniform)\s+([\d.]+)$", printed, re.M))
  assert len(table) == 4, printed
  vae_nll = next(v for k, v in table.items() if k.startswith("VAE, importance"))
  assert table["PixelCNN (exact)"] == pytest.approx(exact, abs=0.01)
  assert table["uniform"] == pytest.approx(uniform, abs=0.01)
  # An importance-sampled estimate is a tighter bound than the ELBO it averages.
  assert vae_nll <= table["VAE, -ELBO (a bound)"] + 1e-2, table
  # The untrained PixelCNN is near uniform (44 nats); the full 1,500 steps reach
  # about 23 (docs/pixelcnn.md: 22.7 after 3,000).
  assert (15.0 < exact < 27.0) if trained else (15.0 < exact < uniform - 3.0), exact
  assert "observed pixels kept: True" in printed
  bits = float(re.search(r"RealNVP test: ([\d.]+) bits/dim", printed).group(1))
  assert (1.0 < bits < 3.2) if trained else (1.0 < bits < math.log2(17)), bits
  mass = float(re.search(r"density mass on the grid: ([\d.]+)", printed).group(1))
  assert abs(mass - 1.0) < 0.02, mass


def _saved_text(path) -> str:
  """Everything the committed notebook shows as text (streams and results)."""
  shown = []
  for cell in json.loads(path.read_text())["cells"]:
    for output in cell.get("outputs", []):
      if output.get("output_type") == "stream":
        shown.append("".join(output["text"]))
      elif "data" in output:
        shown.append("".join(output["data"].get("text/plain", "")))
  return "\n".join(shown)


def test_the_committed_quickstart_outputs_are_not_stale():
  """The saved outputs come from the current code: the config it prints is
  today's default, and the numbers it shows are those of a full run (the
  notebook's 1,500 steps reach about -23 nats; the untrained model is at -44)."""
  saved = _saved_text(QUICKSTART)
  assert str(jaxgen.get_config("vae").model) in saved, (
      "notebooks/quickstart.ipynb shows another default config: re-execute it")
  shown = ast.literal_eval(re.search(r"\{'elbo'.*?\}", saved).group(0))
  assert shown["elbo"] == pytest.approx(shown["reconstruction"] - shown["kl"], abs=1e-3)
  assert -25.0 < shown["elbo"] < -21.0, shown
  mean, spread = map(float, re.search(
      r"test ELBO over 8 seeds: (-?[\d.]+) ± ([\d.]+) nats", saved).groups())
  assert -25.0 < mean < -21.0 and 0.0 < spread < 1.0, (mean, spread)


def test_the_committed_likelihood_outputs_come_from_a_full_run():
  """The saved outputs are those of the notebook's full settings (trained models:
  an exact NLL well below the uniform model's), with its figures."""
  check_likelihood_numbers(_saved_text(LIKELIHOOD), trained=True)
  saved = json.loads(LIKELIHOOD.read_text())["cells"]
  pictures = [o for c in saved for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
  assert len(pictures) == _shown_figures(LIKELIHOOD) == 4


def check_boltzmann_numbers(printed, full=False):
  """notebooks/boltzmann.ipynb: AIS and RAISE on either side, AIS at the exact log Z, EM
  never decreasing, naive Bayes vs logistic regression errors."""
  uniform = -64 * math.log(2)
  ais_ll = float(re.search(r"test log-likelihood, AIS: +(-[\d.]+) nats", printed).group(1))
  raise_ll = float(re.search(r"test log-likelihood, RAISE: (-[\d.]+) nats", printed).group(1))
  assert uniform < ais_ll < 0, ais_ll
  assert raise_ll <= ais_ll + 0.5, (raise_ll, ais_ll)   # RAISE errs low where AIS errs high
  if full:   # 1,450 temperatures: the two agree closely
    assert abs(raise_ll - ais_ll) < 1.0, (raise_ll, ais_ll)
  exact = float(re.search(r"exact log Z: (-?[\d.]+)", printed).group(1))
  rows = [tuple(map(float, r)) for r in re.findall(
      r"K= *(\d+)  forward AIS +(-?[\d.]+) ± ([\d.]+)  reverse AIS +(-?[\d.]+) ± ([\d.]+)",
      printed)]
  assert len(rows) >= 2, printed
  _, forward, forward_se, reverse, reverse_se = rows[-1]
  assert abs(forward - exact) < 0.1 and abs(reverse - exact) < 0.1, (rows, exact)
  # the sandwich on average (means of 10 estimates), within 3 standard errors at K = 10
  _, forward, forward_se, reverse, reverse_se = rows[0]
  assert forward < exact + 3 * forward_se + 1e-3 and reverse > exact - 3 * reverse_se - 1e-3
  assert "EM log-likelihood non-decreasing: True" in printed
  first, last = map(float, re.search(
      r"iteration 1 (-?[\d.]+), iteration \d+ (-?[\d.]+)", printed).groups())
  assert last > first
  table = [tuple(map(float, r)) for r in re.findall(
      r"m= *(\d+)  naive Bayes ([\d.]+)  logistic regression ([\d.]+)", printed)]
  assert len(table) >= 2 and all(0 <= nb < 1 and 0 <= lr < 1 for _, nb, lr in table)
  assert table[-1][2] < table[-1][1], table   # logistic regression's lower asymptote
  assert table[-1][2] < table[0][2], table    # more data helps


def test_the_committed_boltzmann_outputs_come_from_a_full_run():
  path = NOTEBOOKS[0].parent / "boltzmann.ipynb"
  check_boltzmann_numbers(_saved_text(path), full=True)
  assert jaxgen.list_methods()["rbm"] in _saved_text(path), "re-execute notebooks/boltzmann.ipynb"
  saved = json.loads(path.read_text())["cells"]
  pictures = [o for c in saved for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
  assert len(pictures) == _shown_figures(path) == 4
  assert all(c.get("execution_count") for c in saved if c["cell_type"] == "code")   # all ran


def _number(pattern, text):
  """The float the regex's one group finds in text (^ and $ match at lines)."""
  match = re.search(pattern, text, re.M)
  assert match, f"not printed: {pattern}"
  return float(match.group(1))


def check_autoencoders_numbers(printed, trained=False):
  """A 2-D code beating PCA, denoising, sparse codes near ρ, a held-out class detected.

  The untrained models (one step) print: 2-D mse 0.20 (PCA 0.053), 5-NN 0.28,
  dae mse 0.169 against the masked input's 0.059, sae mean activation 0.48 with
  no value below 0.1, AUC 0.59. `trained`: the notebook's full settings.
  """
  ae, pca = map(float, re.search(r"2-D code: autoencoder ([\d.]+), PCA ([\d.]+)",
                                 printed).groups())
  assert pca == pytest.approx(0.0527, abs=0.002) and ae < (0.045 if trained else pca), (ae, pca)
  knn_ae, knn_pca = map(float, re.search(r"5-NN test accuracy in 2-D: autoencoder ([\d.]+), "
                                         r"PCA ([\d.]+)", printed).groups())
  assert knn_pca == pytest.approx(0.62, abs=0.03)
  assert knn_ae > (knn_pca + 0.1 if trained else 0.45), (knn_ae, knn_pca)
  masked, denoised, clean = map(float, re.search(
      r"masked input ([\d.]+), dae of the masked input ([\d.]+), dae of the clean input "
      r"([\d.]+)", printed).groups())
  assert denoised < (0.5 if trained else 0.9) * masked and clean <= denoised, (masked, denoised)
  sparse = re.search(r"sae: mean activation ([\d.]+), share of values below 0.1: ([\d.]+), "
                     r"units with a mean activation in \[0.025, 0.1\]: (\d+) of 64", printed)
  dense = re.search(r"dae: mean activation ([\d.]+), share of values below 0.1: ([\d.]+)",
                    printed)
  assert abs(float(sparse.group(1)) - 0.05) < 0.015 and float(sparse.group(2)) > 0.7, sparse
  assert int(sparse.group(3)) >= (48 if trained else 32), sparse.group(0)
  assert float(dense.group(1)) > 0.2 and float(dense.group(2)) < float(sparse.group(2)) - 0.3
  auc = _number(r"held-out digit 4: ROC-AUC ([\d.]+)", printed)
  assert auc > (0.93 if trained else 0.85), auc
  normal, held_out = map(float, re.search(r"mean error: normal ([\d.]+), held out ([\d.]+)",
                                          printed).groups())
  assert held_out > 1.5 * normal, (normal, held_out)


def check_vae_numbers(printed, trained=False):
  """The ELBO's terms, the reparameterization checks, the β sweep's order and the
  IWAE bound converging to the exact log p(x) of the linear-Gaussian model.

  The untrained VAE's test ELBO is about -44 nats; 300 steps reach about -30,
  the full 3,000 about -24 (2-D latent).
  """
  assert _number(r"\|ELBO − \(reconstruction − KL\)\| ≤ ([\d.e+-]+) nats", printed) < 1e-3
  first, last = map(float, re.search(r"train ELBO: (-?[\d.]+) nats at step \d+, (-?[\d.]+) at",
                                     printed).groups())
  assert last > first + 2.0, (first, last)
  elbo, reconstruction, kl = map(float, re.search(
      r"test ELBO (-?[\d.]+) = reconstruction (-?[\d.]+) − KL ([\d.]+) nats", printed).groups())
  assert elbo == pytest.approx(reconstruction - kl, abs=0.02)
  assert (-26.0 < elbo < -21.0) if trained else (-36.0 < elbo < -22.0), elbo
  assert "same key, same z: True" in printed and "different keys, different z: True" in printed
  assert _number(r"z = μ \+ σ·ε: max \|difference\| ([\d.e+-]+)", printed) < 1e-5
  assert "∂z/∂μ = 1: True" in printed
  assert _number(r"∂z/∂logvar = σ·ε/2: max \|difference\| ([\d.e+-]+)", printed) < 1e-5
  rows = [(float(b), float(r), float(k), float(e), int(u)) for b, r, k, e, u in re.findall(
      r"^\s*([\d.]+)\s+(-?[\d.]+)\s+([\d.]+)\s+(-?[\d.]+)\s+(\d+) / 16$", printed, re.M)]
  assert len(rows) == (4 if trained else 2), rows
  for (_, rec_a, kl_a, _, units_a), (_, rec_b, kl_b, _, units_b) in zip(rows, rows[1:]):
    assert kl_b < kl_a and rec_b < rec_a and units_b <= units_a, rows   # β grows
  by_beta = {row[0]: row for row in rows}
  assert by_beta[1.0][2] > 1.0 and by_beta[4.0][2] < 0.5 * by_beta[1.0][2], rows
  if trained:
    assert by_beta[1.0][4] >= 8 and by_beta[4.0][4] <= 2, rows
    assert max(rows, key=lambda row: row[3])[0] == 1.0, rows     # the best ELBO at β = 1
  check_iwae_numbers(printed)


def check_iwae_numbers(printed):
  """L_k rises with k to the exact log p(x) (no training involved: the same in every run)."""
  exact = _number(r"exact mean log p\(x\): (-?[\d.]+) nats", printed)
  table = [tuple(map(float, row)) for row in re.findall(
      r"^\s*(\d+)\s+(-?[\d.]+) \(-?[\d.]+\)\s+(-?[\d.]+) \(-?[\d.]+\)$", printed, re.M)]
  assert [row[0] for row in table] == [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
  for column in (1, 2):            # mean-field, marginal
    gaps = [exact - row[column] for row in table]
    assert gaps[0] > 0.5 and all(gap > -0.01 for gap in gaps), gaps    # L_1 < L_k <= log p(x)
    assert gaps[-1] < 0.15 * gaps[0], gaps
  assert exact - table[-1][2] < 0.01 and exact - table[6][2] < 0.02, table   # marginal, k=100
  assert exact - table[0][1] < exact - table[0][2], table     # mean-field: the better ELBO
  chunked = _number(r"chunked importance_weighted_bound, mean-field, K = 5000: (-?[\d.]+)",
                    printed)
  assert chunked == pytest.approx(table[-1][1], abs=2e-4)


@pytest.mark.parametrize("path", [AUTOENCODERS, VAE], ids=lambda p: p.name)
def test_the_committed_autoencoder_notebook_outputs_come_from_a_full_run(path):
  """The saved outputs are those of the notebook's full settings (ranges that the
  tests' shortened runs do not reach), with all its figures."""
  check = check_autoencoders_numbers if path == AUTOENCODERS else check_vae_numbers
  check(_saved_text(path), trained=True)
  saved = json.loads(path.read_text())["cells"]
  pictures = [o for c in saved for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
  assert len(pictures) == _shown_figures(path) >= 4


# ------------------------------------------------ gans.ipynb and diffusion.ipynb
GANS = NOTEBOOKS[0].parent / "gans.ipynb"
DIFFUSION = NOTEBOOKS[0].parent / "diffusion.ipynb"


def check_gan_numbers(printed, trained=False):
  """Gradients equal their closed forms, the f-GAN table its oracles, the
  collapse study the order the text states (full runs only: the tests' few
  steps reach no mode), FID-LeNet falling with training."""
  # d/dl log(1 - σ(l)) = -σ(l) = -D(G(z)); d/dl -log σ(l) = -(1 - D(G(z))).
  rows = re.findall(r"^\s*(0\.\d{4})\s+(-\d\.\d{4})\s+(-\d\.\d{4})$", printed, re.M)
  assert len(rows) == 5, printed
  for d, minimax, non_saturating in (map(float, r) for r in rows):
    assert minimax == pytest.approx(-d, abs=2e-4)
    assert non_saturating == pytest.approx(-(1.0 - d), abs=2e-4)
  # The f-divergences: the integral against the closed forms, the f-GAN
  # discriminator loss at the optimal critic against the integral.
  table = {name: (exact, integral, mc, se) for name, exact, integral, mc, se in re.findall(
      r"^(\w+(?:\(0\.5\))?)\s+(—|-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+) ± ([\d.]+)$", printed, re.M)}
  assert len(table) == 10, table
  for name, (exact, integral, mc, se) in table.items():
    if exact != "—":
      assert float(integral) == pytest.approx(float(exact), abs=1e-3), name
    assert abs(float(mc) - float(integral)) < 3 * float(se) + 1e-3, name
  # Mode coverage, 8 seeds per setting.
  modes = {name: sum(map(int, seeds.split(","))) / 8 for name, seeds in re.findall(
      r"^final (.+?): modes per seed \[([\d, ]+)\]", printed, re.M)}
  assert len(modes) == 3, printed
  assert all(0.0 <= value <= 8.0 for value in modes.values()), modes
  if trained:
    # At 2,000 steps minibatch discrimination is ahead (4.6 against 1.4 modes);
    # consensus (γ = 0.1) has not converged yet (the text says so).
    assert modes["minibatch discrimination"] > modes["plain GAN"] + 1.0, modes
  # Latent arithmetic ran over pairs of confidently classified digits.
  share, pairs = re.search(r"latent arithmetic: ([\d.]+) of (\d+) pairs", printed).groups()
  assert int(pairs) >= (20 if trained else 2) and 0.0 <= float(share) <= 1.0
  if trained:
    assert float(share) > 0.3, share
  # FID-LeNet falls with training and stays above the real test digits'
  # (1.21 against the same reference: docs/metrics.md).
  (early_step, early), (last_step, last) = [
      (int(s), float(v)) for s, v in re.findall(
          r"DCGAN FID-LeNet at step (\d+): ([\d.]+)", printed)]
  real = _number(r"real test digits FID-LeNet: ([\d.]+)", printed)
  assert real == pytest.approx(1.21, abs=0.01)
  assert early_step < last_step and real < last < early, (early, last)
  if trained:
    assert last < 20.0, last


def check_diffusion_numbers(printed, trained=False):
  """Schedules as their formulas say; more DDIM steps helping (and, in the full
  run, DDPM ahead at equal steps); guidance raising accuracy and lowering
  diversity; the bound's terms summing to it."""
  for name in ("linear", "cosine"):
    shown = ast.literal_eval(re.search(rf"{name}: √ᾱ_t .*?: (\[.*?\])", printed).group(1))
    assert shown[0] > 0.99 and shown[-1] < 0.01, (name, shown)
    assert all(a >= b for a, b in zip(shown, shown[1:])), shown
  half = {name: _number(rf"{name}: ᾱ_t at t = T/2: ([\d.]+)", printed)
          for name in ("linear", "cosine")}
  # Cosine keeps more signal at T/2 (ᾱ = 0.49 against 0.08 for the linear schedule).
  assert half["cosine"] > 0.4 > 0.15 > half["linear"], half
  first, last = (float(v) for v in re.search(
      r"L_simple: ([\d.]+) at step \d+, ([\d.]+) at step \d+", printed).groups())
  assert last < 0.8 * first, (first, last)
  fid = {(s, int(k)): float(v) for s, k, v in re.findall(
      r"^(ddim|ddpm)\s+(\d+) steps: FID-LeNet\s+([\d.]+)", printed, re.M)}
  ddim = sorted(k for s, k in fid if s == "ddim")
  assert len(ddim) >= 2 and len(fid) == 2 * len(ddim), fid
  # More DDIM steps help (the fewest against the most).
  assert fid["ddim", ddim[0]] > fid["ddim", ddim[-1]], fid
  guidance = {float(w): (float(a), float(d)) for w, a, d in re.findall(
      r"^\s*(\d\.\d)\s+([\d.]+)\s+([\d.]+)$", printed, re.M)}
  assert sorted(guidance) == [0.0, 1.0, 2.0, 3.0, 5.0], guidance
  accuracy = {w: a for w, (a, _) in guidance.items()}
  assert accuracy[0.0] < 0.3, accuracy          # unconditional: near chance
  assert accuracy[3.0] > accuracy[0.0] + (0.6 if trained else 0.2), accuracy
  assert guidance[5.0][1] < guidance[0.0][1], guidance   # diversity falls
  terms = {name: _number(rf"^{name}\s+(-?[\d.]+)$", printed) for name in (
      "prior", "diffusion", "decoder", "sum of the terms", "bound \\(total\\)")}
  assert terms["sum of the terms"] == pytest.approx(terms["bound \\(total\\)"], abs=2e-4)
  assert terms["prior"] + terms["diffusion"] + terms["decoder"] == pytest.approx(
      terms["bound \\(total\\)"], abs=3e-4)
  assert 0.0 <= terms["prior"] < 0.01 and terms["diffusion"] > terms["decoder"] >= 0.0, terms
  # Below the uniform model's log2(17) = 4.09 bits/dim once trained.
  assert terms["bound \\(total\\)"] < (4.0 if trained else 6.0), terms
  if trained:
    # As the text says: ancestral sampling ahead of DDIM at equal steps.
    assert all(fid["ddpm", k] < fid["ddim", k] for k in ddim[1:]), fid


def _saved_pictures(path):
  cells = json.loads(path.read_text())["cells"]
  return [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]


def test_the_committed_gan_outputs_come_from_a_full_run():
  """The saved outputs show a full run's numbers (minibatch discrimination
  covering more modes than the plain GAN, FID-LeNet below 20), with every figure."""
  check_gan_numbers(_saved_text(GANS), trained=True)
  assert len(_saved_pictures(GANS)) == _shown_figures(GANS) == 4


def test_the_committed_diffusion_outputs_come_from_a_full_run():
  """The saved outputs show a full run's numbers (guidance reaching high
  accuracy, DDPM ahead of DDIM, a bound below uniform), with every figure."""
  check_diffusion_numbers(_saved_text(DIFFUSION), trained=True)
  assert len(_saved_pictures(DIFFUSION)) == _shown_figures(DIFFUSION) == 6
