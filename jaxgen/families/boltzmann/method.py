"""The `rbm` method: CD-k / PCD updates through optax, monitors, Gibbs samples, AIS.

`train_step` calls no `jax.grad`: it runs k Gibbs sweeps (from the data for
CD-k, from the persistent chains in `model_state` for PCD), forms the data and
model statistics (`energies.cd_statistics`), averages them over devices and
hands them to optax as the "gradient" — so momentum, weight decay (an
`optax.add_decayed_weights` on the weights only) and learning-rate schedules
come from optax. The chains are replicated state: their noise is drawn per
chain index from the step's key, the same on every device, so 4 devices = 1.

`model_state` also keeps the running mean of the training data (over every
batch seen), from which AIS builds its base-rate model.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen.core import collectives, optim, precision, rng
from jaxgen.core.evaluators import Derived, ModelLevel, PerExample
from jaxgen.core.state import Method, TrainState
from jaxgen.families.boltzmann import ais, energies
from jaxgen.families.boltzmann import settings as settings_lib

WEIGHTS = ("weights", "w1", "w2")   # the parameters weight decay applies to


def decayed_optimizer(config: ml_collections.ConfigDict, weight_decay: float,
                      horizon: int) -> optax.GradientTransformation:
  """L2 on the weights (not the biases), then the configured optax optimizer."""
  tx = optim.make(config, horizon)
  if not weight_decay:
    return tx
  mask = lambda params: {k: k in WEIGHTS for k in params}  # noqa: E731
  return optax.chain(optax.add_decayed_weights(weight_decay, mask), tx)


def running_mean(model_state: dict[str, Any], v: jax.Array) -> dict[str, Any]:
  """The data marginals' running mean over every batch seen (global batch means)."""
  batch_mean = collectives.mean_over_devices(jnp.mean(v, axis=0))
  count = model_state["data_batches"] + 1.0
  mean = model_state["data_mean"] + (batch_mean - model_state["data_mean"]) / count
  return {**model_state, "data_mean": mean, "data_batches": count}


def ais_evaluator(*, name: str, model: str, params_fn, a: settings_lib.AisSettings,
                  visible: str, batch_size: int, protocol: dict[str, Any],
                  marginals_fn=None) -> ModelLevel:
  """A model-level evaluator: log Ẑ by AIS with the base-rate model of the training data.

  params_fn(state): the parameters AIS anneals to; marginals_fn(state): the
  (running mean, batches seen) of that model's visible units' training data
  (default: model_state's "data_mean", "data_batches").
  """
  betas = ais.beta_schedule(a.boundaries, a.counts)
  if marginals_fn is None:
    marginals_fn = lambda st: (st.model_state["data_mean"],  # noqa: E731
                               st.model_state["data_batches"])

  def fn(state: TrainState, key: jax.Array) -> dict[str, jax.Array]:
    params = dict(params_fn(state))
    mean, batches = marginals_fn(state)
    params["base_bias"] = ais.base_rate_bias(mean, batches * batch_size,
                                             a.base_rate_pseudocount, visible)
    out = ais.estimate(model=model, params=params, betas=betas, key=key, runs=a.runs,
                       visible=visible, chunk=a.chunk, progress=a.progress)
    return {f"{name}_{k}": v for k, v in out.items()}

  return ModelLevel(name, fn, {
      "estimator": "annealed importance sampling (Neal 2001; Salakhutdinov & Murray 2008)",
      "runs": a.runs, "temperatures": a.num_temperatures,
      "beta_schedule": {"boundaries": list(a.boundaries), "counts": list(a.counts)},
      "base_model": "visible biases from the running mean of the training batches "
                    f"(+{a.base_rate_pseudocount:g} pseudo-counts), no weights",
      "log_z": "log Z_A + logmeanexp(log w); stderr by the delta method",
      **protocol}, compiled=False)


def log_likelihood_evaluator(*, per_example: str, out: str, what: str) -> Derived:
  """`out` = the split's mean of `per_example` minus AIS's log Ẑ, with S&M's ±3σ̂ interval.

  `out`_minus_3se / _plus_3se: per_example - log(Ẑ ± 3σ̂) (the plus side is
  +inf, null in eval.json, where Ẑ - 3σ̂ ≤ 0).
  """

  def fn(v: dict[str, float]) -> dict[str, float]:
    return {out: v[per_example] - v["ais_log_z"],
            f"{out}_minus_3se": v[per_example] - v["ais_log_z_plus_3se"],
            f"{out}_plus_3se": v[per_example] - v["ais_log_z_minus_3se"]}

  return Derived(out, fn, needs=(per_example, "ais_log_z", "ais_log_z_minus_3se",
                                 "ais_log_z_plus_3se"),
                 protocol={"value": f"{what}: mean {per_example} over the split - ais_log_z",
                           "interval": f"{per_example} - log(Ẑ ± 3σ̂) (S&M 2008)",
                           "units": "nats per example"})


def base_rate_params(params: energies.Params, state: TrainState, a: settings_lib.AisSettings,
                     visible: str, batch_size: int) -> energies.Params:
  """The RBM's parameters plus the base-rate model's visible biases (as the `ais` evaluator)."""
  out = dict(params)
  out["base_bias"] = ais.base_rate_bias(state.model_state["data_mean"],
                                        state.model_state["data_batches"] * batch_size,
                                        a.base_rate_pseudocount, visible)
  return out


def raise_evaluators(model: Rbm) -> tuple[PerExample, Derived]:
  """RAISE per test example (`raise_log_likelihood`) and the implied mean log Z (`raise_log_z`)."""
  a, visible = model.a, model.s.visible
  betas = ais.beta_schedule(a.boundaries, a.counts)

  def fn(state: TrainState, batch: dict[str, jax.Array], keys: jax.Array):
    params = base_rate_params(state.params["rbm"], state, a, visible, model.batch_size)
    return {"raise_log_likelihood": ais.raise_log_likelihood(
        params=params, v=_flat(model, batch), keys=keys, betas=betas, runs=a.reverse_runs,
        visible=visible)}

  per_example = PerExample("raise", fn, {
      "estimator": "reverse AIS from each test point (RAISE, Burda, Grosse & Salakhutdinov "
                   "2015): -F(v) - log Z_A + logmeanexp(log w) of the reverse runs, the log "
                   "of an unbiased estimate of p_ann(v) (the annealing model's "
                   "probability): a stochastic lower bound on log p_ann(v), which tends "
                   "to log p(v) as the temperatures increase",
      "runs_per_example": a.reverse_runs, "temperatures": a.num_temperatures,
      "beta_schedule": "the ais evaluator's, reversed; the same base-rate model",
      "units": "nats per example"})
  derived = Derived("raise_log_z", lambda v: {
      "raise_log_z": v["neg_free_energy"] - v["raise_log_likelihood"]},
      needs=("neg_free_energy", "raise_log_likelihood"),
      protocol={"value": "mean over the split of log Z_A - logmeanexp(log w) of the reverse "
                         "runs: the log Z that RAISE's mean implies (to set beside ais_log_z)"})
  return per_example, derived


@dataclasses.dataclass(frozen=True)
class Rbm:
  """Everything `make` fixes for `rbm`."""

  s: settings_lib.RbmSettings
  a: settings_lib.AisSettings
  shape: tuple[int, ...]
  dim: int
  tx: optax.GradientTransformation
  batch_size: int


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The RBM trained by CD-k or PCD, for `config` and the data `spec`."""
  precision.require_float32(config, "rbm", "Gibbs sampling and AIS work with float32 "
                            "probabilities and free energies")
  s = settings_lib.resolve_rbm(config.model)
  dim = settings_lib.check_data(spec, s.visible, "rbm")
  a = settings_lib.resolve_ais(config.ais)
  tx = decayed_optimizer(config.optim, s.weight_decay, optim.schedule_horizon(config.train))
  model = Rbm(s, a, tuple(spec.shape), dim, tx, int(config.data.batch_size))
  protocol = {
      "estimator": "neg_free_energy: -F(v), the unnormalized log p(v) (exact); the test "
                   "log-likelihood is neg_free_energy - ais_log_z",
      "units": "nats per example",
      "monitors": "reconstruction_error: ||v - E[v | p(h|v)]||² (mean field); "
                  "pseudo_log_likelihood (bernoulli): D log p(v_i | v_-i), one i per "
                  "example from its key (unbiased for Besag's PLL)",
      "model": f"{s.visible}-bernoulli RBM {dim}x{s.hidden}, "
               + (f"PCD-{s.cd_steps} ({s.num_chains} chains)" if s.persistent
                  else f"CD-{s.cd_steps}"),
  }
  evaluators = (
      ais_evaluator(name="ais", model="rbm", params_fn=lambda st: st.params["rbm"],
                    a=a, visible=s.visible, batch_size=model.batch_size,
                    protocol={"test_log_likelihood": "neg_free_energy - ais_log_z"}),
      log_likelihood_evaluator(per_example="neg_free_energy", out="log_likelihood",
                               what="the test log-likelihood"))
  if a.reverse:
    evaluators += raise_evaluators(model)
  return Method(
      name="rbm", init=lambda key, batch: init(model, key, batch),
      train_step=lambda state, batch: train_step(model, state, batch),
      sample=lambda state, key, num: sample(model, state, key, num),
      evaluate=lambda state, batch, keys: evaluate(model, state, batch, keys),
      eval_protocol=protocol, evaluators=evaluators)


def _flat(model: Rbm, batch: dict[str, jax.Array]) -> jax.Array:
  x = jnp.asarray(batch["x"], jnp.float32)
  return x.reshape(x.shape[0], model.dim)


def init_chains(key: jax.Array, params: energies.Params, num: int, visible: str,
                from_biases: bool = False) -> jax.Array:
  """Chains from noise: Bernoulli(1/2) or N(0, I) visible states, [num, D].

  from_biases: Bernoulli(σ(b)) or N(b, I) instead — the visible biases' own
  distribution, the data marginals when b was set from them (PCD's start:
  chains from uniform noise made MNIST's first updates large enough to stall
  PCD at lr 0.05).
  """
  dim = params["visible_bias"].shape[0]
  if visible == "bernoulli":
    p = jax.nn.sigmoid(params["visible_bias"]) if from_biases else 0.5
    return (energies.chain_noise(key, "uniform", (num, dim)) < p).astype(jnp.float32)
  mean = params["visible_bias"] if from_biases else 0.0
  return mean + energies.chain_noise(key, "normal", (num, dim))


def init(model: Rbm, key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
  """Small random weights, visible biases from the example batch, chains from noise."""
  s = model.s
  keys = rng.split(key, "weights", "chains", "base")
  v = _flat(model, batch)
  data_mean = jnp.mean(v, 0) if s.data_bias_init and s.visible == "bernoulli" else None
  params = energies.init_params(keys["weights"], visible_dim=model.dim, hidden_dim=s.hidden,
                                init_std=s.init_std, data_mean=data_mean)
  if s.visible == "gaussian" and s.data_bias_init:
    params["visible_bias"] = jnp.mean(v, 0)
  model_state = {"data_mean": jnp.zeros((model.dim,), jnp.float32),
                 "data_batches": jnp.zeros((), jnp.float32)}
  if s.persistent:
    model_state["chains"] = init_chains(keys["chains"], params, s.num_chains, s.visible,
                                        from_biases=True)
  return TrainState.create(key=keys["base"], params={"rbm": params},
                           opt_state={"rbm": model.tx.init(params)}, model_state=model_state)


def negative_phase(*, key: jax.Array, v: jax.Array, params: energies.Params,
                   model_state: dict[str, Any], s: Any, visible: str,
                   down: energies.Params | None = None) -> tuple[jax.Array, dict[str, Any]]:
  """The model's visible states: k sweeps from the data (CD-k) or the chains (PCD)."""
  if s.persistent:
    chains = energies.gibbs_chain(key, model_state["chains"], params, visible, s.cd_steps,
                                  energies.chain_noise, down)
    return chains, {**model_state, "chains": chains}
  v_model = energies.gibbs_chain(key, v, params, visible, s.cd_steps,
                                 energies.per_example_noise, down)
  return v_model, model_state


def rbm_update(*, tx: optax.GradientTransformation, params: energies.Params, opt_state: Any,
               v: jax.Array, v_model: jax.Array, visible: str
               ) -> tuple[energies.Params, Any, dict[str, jax.Array]]:
  """One CD/PCD update through optax; metrics of the batch."""
  grads = collectives.mean_over_devices(
      energies.cd_statistics(v_data=v, v_model=v_model, params=params))
  new_params, opt_state = optim.apply_gradients(tx, grads, opt_state, params)
  recon = collectives.mean_over_devices(jnp.mean(
      energies.reconstruction_error(v=v, params=params, visible=visible)))
  gap = collectives.mean_over_devices(
      jnp.mean(energies.free_energy(v=v, params=params, visible=visible)))
  gap = gap - jnp.mean(energies.free_energy(v=v_model, params=params, visible=visible))
  return new_params, opt_state, {"loss": recon, "reconstruction_error": recon,
                                 "free_energy_gap": gap, "update_norm": optax.tree.norm(grads)}


def train_step(model: Rbm, state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """k Gibbs sweeps, the CD statistics as the gradient, one optax update."""
  keys = state.keys("negative")
  v = _flat(model, batch)
  params = state.params["rbm"]
  v_model, model_state = negative_phase(key=keys["negative"], v=v, params=params,
                                        model_state=state.model_state, s=model.s,
                                        visible=model.s.visible)
  params, opt_state, metrics = rbm_update(tx=model.tx, params=params,
                                          opt_state=state.opt_state["rbm"], v=v,
                                          v_model=v_model, visible=model.s.visible)
  model_state = running_mean(model_state, v)
  return state.replace(step=state.step + 1, params={"rbm": params},
                       opt_state={"rbm": opt_state}, model_state=model_state), metrics


def evaluate(model: Rbm, state: TrainState, batch: dict[str, jax.Array], keys: jax.Array
             ) -> dict[str, jax.Array]:
  """Per example: -F(v) (exact, unnormalized), reconstruction error, PLL estimate."""
  v = _flat(model, batch)
  params = state.params["rbm"]
  out = {"neg_free_energy": -energies.free_energy(v=v, params=params, visible=model.s.visible),
         "reconstruction_error": energies.reconstruction_error(v=v, params=params,
                                                               visible=model.s.visible)}
  if model.s.visible == "bernoulli":
    out["pseudo_log_likelihood"] = energies.pseudo_log_likelihood_estimate(
        v=v, params=params, key=keys)
  return out


def sample(model: Rbm, state: TrainState, key: jax.Array, num: int) -> jax.Array:
  """E[v | h] after `sample_steps` Gibbs sweeps from noise (chain i: split(·, num)[i])."""
  keys = rng.split(key, "start", "chain", "last")
  params = state.params["rbm"]
  v = init_chains(keys["start"], params, num, model.s.visible)
  v = energies.gibbs_chain(keys["chain"], v, params, model.s.visible, model.s.sample_steps,
                           energies.chain_noise)
  h = energies.sample_hidden(keys["last"], v, params, energies.chain_noise)
  return energies.visible_mean(h, params, model.s.visible).reshape((num,) + model.shape)


def log_likelihood_of(metrics: dict[str, Any], prefix: str = "ais",
                      per_example: str = "neg_free_energy") -> Any:
  """The test log-likelihood (or bound) of an evaluation: mean(per-example) - log Ẑ.

  The evaluation itself reports it (`log_likelihood`, or `log_likelihood_bound`
  for dbn/dbm); this recomputes it from its parts.
  """
  return metrics[per_example] - metrics[f"{prefix}_log_z"]



def long_chain_samples(params: energies.Params, key: jax.Array, *, num: int, steps: int,
                       visible: str, chunk: int = 1000, progress: bool = False) -> jax.Array:
  """E[v | h] after `steps` Gibbs sweeps from noise: a host loop over compiled chunks.

  Sweep t draws from fold_in(chain key, t) (the chain key split from `key` by
  purpose, as in `sample`), whichever chunk runs it, so a long chain shows
  progress per chunk and the result is the same for any chunk size.
  """
  import tqdm  # pylint: disable=import-outside-toplevel
  keys = rng.split(key, "start", "chain", "last")
  v = init_chains(keys["start"], params, num, visible)
  bar = tqdm.tqdm(total=steps, desc="Gibbs chains", unit="sweep", disable=not progress,
                  leave=False)
  for start in range(0, steps, chunk):
    n = min(chunk, steps - start)
    v = _sweeps(params, v, keys["chain"], start, n, visible)
    bar.update(n)
  bar.close()
  h = energies.sample_hidden(keys["last"], v, params, energies.chain_noise)
  return energies.visible_mean(h, params, visible)


@functools.partial(jax.jit, static_argnames=("steps", "visible"))
def _sweeps(params: energies.Params, v: jax.Array, key: jax.Array, start: int, steps: int,
            visible: str) -> jax.Array:
  """Sweeps start .. start+steps-1 of a chain: sweep t uses fold_in(key, t)."""

  def body(v, t):
    return energies.gibbs_sweep(jax.random.fold_in(key, t), v, params, visible,
                                energies.chain_noise), None

  v, _ = jax.lax.scan(body, v, start + jnp.arange(steps))
  return v
