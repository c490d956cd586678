"""The `dbn` method: a deep belief net trained greedily, layer by layer (Hinton et al. 2006).

RBM l (l = 0..L-1, sizes D×H1, H1×H2, ...) is trained by CD-k or PCD during
stage l on the data propagated up through RBMs 0..l-1 (p(h|v), or a sample
of it); the stage is a pure function of the step (`stage_of`), so a run
resumed in the middle of a stage continues bit-exactly. After training the
lower RBMs act as directed generative layers p(h^{l-1} | h^l) and the top RBM
is an undirected prior over h^{L-1}.

Sampling: Gibbs in the top RBM from noise (`sample_steps` sweeps), then one
top-down pass through the directed layers (samples; the visible layer's mean).

Evaluation: the variational lower bound (Hinton et al. 2006, eq. 7; S&M 2008,
eq. 18) with q(h^l | h^{l-1}) the RBMs' upward conditionals:
  log p(v) ≥ E_q[Σ_l log p(h^{l-1} | h^l) + log p*(h^{L-1}) - log q(h^{1..L-1} | v)] - log Z_top,
with p*(h^{L-1}) = exp(-F_top(h^{L-1})). `evaluate` returns the bound plus
log Z_top (`bound_plus_log_z`, from `bound_samples` draws of q per example,
from the example's key); the `ais` evaluator estimates log Z_top; the test
bound is their difference (`method.log_likelihood_of(metrics, per_example=
"bound_plus_log_z")`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen.core import optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError
from jaxgen.families.boltzmann import energies, method as rbm_method
from jaxgen.families.boltzmann import settings as settings_lib


def stage_of(step: jax.Array | int, stage_steps: int, num_stages: int) -> jax.Array:
  """The stage trained at `step`: min(step // stage_steps, num_stages - 1)."""
  return jnp.minimum(jnp.asarray(step) // stage_steps, num_stages - 1)


def resolve_stage_steps(s: settings_lib.StackSettings, horizon: int, num_stages: int) -> int:
  """model.stage_steps, or the schedule horizon split evenly over the stages."""
  return s.stage_steps or max(1, horizon // num_stages)


@dataclasses.dataclass(frozen=True)
class Dbn:
  """Everything `make` fixes for `dbn`."""

  s: settings_lib.StackSettings
  a: settings_lib.AisSettings
  shape: tuple[int, ...]
  sizes: tuple[int, ...]        # (D, H1, ..., HL)
  stage_steps: int
  tx: optax.GradientTransformation
  batch_size: int

  @property
  def num_rbms(self) -> int:
    return len(self.sizes) - 1

  @property
  def top(self) -> str:
    return f"rbm{self.num_rbms - 1}"


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The DBN for `config` and the data `spec`."""
  precision.require_float32(config, "dbn", "Gibbs sampling and AIS work with float32 "
                            "probabilities and free energies")
  s = settings_lib.resolve_stack(config.model)
  if len(s.layers) < 2:
    raise ConfigError(f"dbn needs at least 2 hidden layers (model.layers), got {s.layers}; "
                      "a single layer is the `rbm` method")
  dim = settings_lib.check_data(spec, "bernoulli", "dbn")
  a = settings_lib.resolve_ais(config.ais, "dbn")
  stage_steps = resolve_stage_steps(s, optim.schedule_horizon(config.train), len(s.layers))
  tx = rbm_method.decayed_optimizer(config.optim, s.weight_decay, stage_steps)
  model = Dbn(s, a, tuple(spec.shape), (dim,) + s.layers, stage_steps, tx,
              int(config.data.batch_size))
  protocol = {
      "estimator": "bound_plus_log_z: the variational lower bound on log p(v) plus "
                   "log Z of the top RBM, with q the RBMs' upward conditionals, "
                   f"{s.bound_samples} sample(s) of q per example; the test bound is "
                   "bound_plus_log_z - ais_log_z",
      "units": "nats per example",
      "model": f"DBN {'-'.join(map(str, model.sizes))}, greedy "
               + (f"PCD-{s.cd_steps}" if s.persistent else f"CD-{s.cd_steps}")
               + f", {stage_steps} steps per layer",
  }
  evaluator = rbm_method.ais_evaluator(
      name="ais", model="rbm", params_fn=lambda st: st.params[model.top], a=a,
      visible="bernoulli", batch_size=model.batch_size,
      marginals_fn=lambda st: (st.model_state["data_mean"][model.top],
                               st.model_state["data_batches"][model.top]),
      protocol={"annealed_model": f"the top RBM ({model.top})",
                "test_bound": "bound_plus_log_z - ais_log_z"})
  return Method(
      name="dbn", init=lambda key, batch: init(model, key, batch),
      train_step=lambda state, batch: train_step(model, state, batch),
      sample=lambda state, key, num: sample(model, state, key, num),
      evaluate=lambda state, batch, keys: evaluate(model, state, batch, keys),
      eval_protocol=protocol, evaluators=(evaluator, rbm_method.log_likelihood_evaluator(
          per_example="bound_plus_log_z", out="log_likelihood_bound",
          what="the test lower bound (variational bound with AIS on the top RBM)")))


def init(model: Dbn, key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
  """Every RBM initialised as the `rbm` method's (visible biases of RBM 0 from the batch)."""
  s = model.s
  keys = rng.split(key, "weights", "chains", "base")
  v = jnp.asarray(batch["x"], jnp.float32).reshape(batch["x"].shape[0], model.sizes[0])
  params, opt_state, means, batches, chains = {}, {}, {}, {}, {}
  for l in range(model.num_rbms):
    name = f"rbm{l}"
    mean = jnp.mean(v, 0) if (l == 0 and s.data_bias_init) else None
    params[name] = energies.init_params(jax.random.fold_in(keys["weights"], l),
                                        visible_dim=model.sizes[l],
                                        hidden_dim=model.sizes[l + 1],
                                        init_std=s.init_std, data_mean=mean)
    opt_state[name] = model.tx.init(params[name])
    means[name] = jnp.zeros((model.sizes[l],), jnp.float32)
    batches[name] = jnp.zeros((), jnp.float32)
    if s.persistent:
      chains[name] = rbm_method.init_chains(jax.random.fold_in(keys["chains"], l),
                                            params[name], s.num_chains, "bernoulli",
                                            from_biases=True)
  model_state = {"data_mean": means, "data_batches": batches}
  if s.persistent:
    model_state["chains"] = chains
  return TrainState.create(key=keys["base"], params=params, opt_state=opt_state,
                           model_state=model_state)


def propagate_up(key: jax.Array, x: jax.Array, params: energies.Params, how: str) -> jax.Array:
  """The next layer's data: p(h | x) or a per-example sample of it."""
  if how == "mean":
    return energies.hidden_probs(x, params)
  return energies.sample_hidden(key, x, params, energies.per_example_noise)


def _stage_branch(model: Dbn, layer: int, v: jax.Array, keys: dict[str, jax.Array]):
  """The update of RBM `layer` on the data propagated up to it (one lax.switch branch)."""
  name = f"rbm{layer}"

  def branch(operand):
    params, opt_state, model_state = operand
    x = v
    for l in range(layer):   # static: the layers below, frozen
      x = propagate_up(jax.random.fold_in(keys["up"], l), x, params[f"rbm{l}"],
                       model.s.propagate)
    own = {"chains": model_state["chains"][name]} if model.s.persistent else {}
    x_model, own = rbm_method.negative_phase(key=keys["negative"], v=x, params=params[name],
                                             model_state=own, s=model.s, visible="bernoulli")
    new_params, new_opt, metrics = rbm_method.rbm_update(
        tx=model.tx, params=params[name], opt_state=opt_state[name], v=x, v_model=x_model,
        visible="bernoulli")
    marginals = rbm_method.running_mean(
        {"data_mean": model_state["data_mean"][name],
         "data_batches": model_state["data_batches"][name]}, x)
    model_state = {**model_state,
                   "data_mean": {**model_state["data_mean"], name: marginals["data_mean"]},
                   "data_batches": {**model_state["data_batches"],
                                    name: marginals["data_batches"]}}
    if model.s.persistent:
      model_state["chains"] = {**model_state["chains"], name: own["chains"]}
    return ({**params, name: new_params}, {**opt_state, name: new_opt}, model_state), metrics

  return branch


def train_step(model: Dbn, state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One CD/PCD update of the RBM of this step's stage."""
  keys = state.keys("up", "negative")
  v = jnp.asarray(batch["x"], jnp.float32).reshape(batch["x"].shape[0], model.sizes[0])
  stage = stage_of(state.step, model.stage_steps, model.num_rbms)
  branches = [_stage_branch(model, l, v, keys) for l in range(model.num_rbms)]
  (params, opt_state, model_state), metrics = jax.lax.switch(
      stage, branches, (state.params, state.opt_state, state.model_state))
  metrics = {**metrics, "stage": stage.astype(jnp.float32)}
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       model_state=model_state), metrics


def bernoulli_log_prob(x: jax.Array, logits: jax.Array) -> jax.Array:
  """Σ_i log Bernoulli(x_i; σ(logits_i)): [B, N] -> [B]."""
  return jnp.sum(x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits), -1)


def lower_bound_plus_log_z(*, v: jax.Array, params: dict[str, energies.Params],
                           num_rbms: int, key: jax.Array) -> jax.Array:
  """One-sample log p(v, h) - log q(h | v) + log Z_top per example (see the module docstring).

  key: one key, or per-example keys; layer l draws from fold_in(·, l).
  """
  x, total = v, jnp.zeros(v.shape[:1], jnp.float32)
  for l in range(num_rbms - 1):
    p = params[f"rbm{l}"]
    logits_up = energies.hidden_input(x, p)
    layer_key = (jax.vmap(lambda k, l=l: jax.random.fold_in(k, l))(key)
                 if rng.is_per_example(key) else jax.random.fold_in(key, l))
    h = (rng.uniform(layer_key, logits_up.shape) < jax.nn.sigmoid(logits_up)).astype(v.dtype)
    total += (bernoulli_log_prob(x, energies.visible_input(h, p))   # log p(h^{l-1} | h^l)
              - bernoulli_log_prob(h, logits_up))                   # - log q(h^l | h^{l-1})
    x = h
  top = params[f"rbm{num_rbms - 1}"]
  return total - energies.free_energy(v=x, params=top, visible="bernoulli")


def evaluate(model: Dbn, state: TrainState, batch: dict[str, jax.Array], keys: jax.Array
             ) -> dict[str, jax.Array]:
  """The lower bound plus log Z_top, averaged over `bound_samples` draws; RBM 0's monitors."""
  v = jnp.asarray(batch["x"], jnp.float32).reshape(batch["x"].shape[0], model.sizes[0])
  draws = [lower_bound_plus_log_z(
      v=v, params=state.params, num_rbms=model.num_rbms,
      key=jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(keys))
      for i in range(model.s.bound_samples)]
  return {"bound_plus_log_z": jnp.mean(jnp.stack(draws), 0),
          "reconstruction_error": energies.reconstruction_error(
              v=v, params=state.params["rbm0"], visible="bernoulli")}


def sample(model: Dbn, state: TrainState, key: jax.Array, num: int) -> jax.Array:
  """Gibbs in the top RBM from noise, then a top-down pass; the visible layer's mean."""
  keys = rng.split(key, "start", "chain", "down")
  top = state.params[model.top]
  x = rbm_method.init_chains(keys["start"], top, num, "bernoulli")
  x = energies.gibbs_chain(keys["chain"], x, top, "bernoulli", model.s.sample_steps,
                           energies.chain_noise)
  for l in range(model.num_rbms - 2, -1, -1):
    # x is h^{l+1} (the hidden units of RBM l): draw h^l, or the data's mean at the bottom
    mean = energies.visible_mean(x, state.params[f"rbm{l}"], "bernoulli")
    x = mean if l == 0 else (energies.chain_noise(jax.random.fold_in(keys["down"], l),
                                                  "uniform", mean.shape) < mean
                             ).astype(mean.dtype)
  return x.reshape((num,) + model.shape)

