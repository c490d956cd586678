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
import pathlib
import re

import matplotlib
import pytest

import jaxgen

NOTEBOOKS = sorted((pathlib.Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
QUICKSTART = NOTEBOOKS[0].parent / "quickstart.ipynb"
LIKELIHOOD = NOTEBOOKS[0].parent / "likelihood.ipynb"
STEPS = 300
# Notebooks with a cell tagged "parameters" run with these values in its place.
PARAMETERS = {
    "likelihood.ipynb": "PIXELCNN_STEPS = 40\nVAE_STEPS = 200\nVAE_IMPORTANCE = 50\n"
                        "REALNVP_STEPS = 20\nTOY_STEPS = 150\n",
    "gans.ipynb": "RING_STEPS = 400\nDCGAN_STEPS = 300\nFID_SAMPLES = 200\n",
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
    return fit(config, **kwargs)

  def show(*args, **kwargs):
    del args, kwargs
    figure = plt.gcf()
    if figure.axes:  # a figure with something drawn on it
      figures.append(figures_dir / f"figure_{len(figures)}.png")
      figure.savefig(figures[-1])
    plt.close(figure)

  monkeypatch.setattr(jaxgen, "fit", short_fit)
  monkeypatch.setattr(plt, "show", show)
  cells = json.loads(path.read_text())["cells"]
  namespace: dict = {}
  out = io.StringIO()
  with contextlib.redirect_stdout(out):
    for cell in cells:
      if cell["cell_type"] == "code":
        source = "".join(cell["source"])
        if "parameters" in cell["metadata"].get("tags", ()) and path.name in PARAMETERS:
          source = PARAMETERS[path.name]
        exec(compile(source, f"{path.name}", "exec"), namespace)  # noqa: S102
  return out.getvalue(), figures


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
    assert figure.stat().st_size > 2000, figure  # a drawn PNG, not an empty canvas
  if path == QUICKSTART:
    check_quickstart_numbers(printed)
  if path == LIKELIHOOD:
    check_likelihood_numbers(printed)
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


# ------------------------------------------------ gans.ipynb and diffusion.ipynb
GANS = NOTEBOOKS[0].parent / "gans.ipynb"
DIFFUSION = NOTEBOOKS[0].parent / "diffusion.ipynb"


def _number(pattern, text):
  return float(re.search(pattern, text, re.M).group(1))


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
