"""The `dbm` method: a two-hidden-layer deep Boltzmann machine (Salakhutdinov & Hinton 2009).

E(v, h1, h2) = -b·v - c1·h1 - c2·h2 - vᵀW1h1 - h1ᵀW2h2, all units binary.
params {"dbm": {"w1" [D, H1], "w2" [H1, H2], "b", "c1", "c2", "c1_top"}}; c1_top is
the visible bias of the second pre-training RBM, unused by the DBM itself.

Three stages, a pure function of the step (`dbn.stage_of`), each with its own
optax state:
  0. the bottom RBM (v, h1) with doubled up-weights, p(h1|v) = σ(2vW1 + c1),
     p(v|h1) = σ(h1W1ᵀ + b)  (S&H 2009, section 3.1: "modified" RBMs);
  1. the top RBM (h1, h2) with doubled down-weights, p(h1|h2) = σ(2h2W2ᵀ + c1_top),
     p(h2|h1) = σ(h1W2 + c2), on h1 ~ the bottom RBM's (doubled) p(h1|v);
  2. the DBM (S&H 2009, Algorithm 1): data statistics from the mean-field
     posterior q(h1)q(h2) (`mean_field`, fixed-point iterations), model
     statistics from persistent Gibbs chains (v, h1, h2) in model_state.
Pre-training's weights are the DBM's (no halving: the doubling made the
RBMs' conditionals match the DBM's with the missing layer's input replaced).

Evaluation: the mean-field lower bound
  log p(v) ≥ E_q[-E(v, h1, h2)] + H(q) - log Z
(deterministic), as `bound_plus_log_z`; `ais` estimates log Z by AIS on the
DBM with h1 summed out analytically (the chain runs over (v, h2)), as S&H 2009.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax

from jaxgen.core import collectives, optim, precision, rng
from jaxgen.core.state import Method, TrainState
from jaxgen.errors import ConfigError
from jaxgen.families.boltzmann import dbn as dbn_lib
from jaxgen.families.boltzmann import energies, method as rbm_method
from jaxgen.families.boltzmann import settings as settings_lib

Params = dict[str, jax.Array]
NUM_STAGES = 3


@dataclasses.dataclass(frozen=True)
class Dbm:
  """Everything `make` fixes for `dbm`."""

  s: settings_lib.StackSettings
  a: settings_lib.AisSettings
  shape: tuple[int, ...]
  sizes: tuple[int, int, int]      # (D, H1, H2)
  stage_steps: int
  tx: optax.GradientTransformation
  batch_size: int
  tx_dbm: optax.GradientTransformation   # stage 2's: tx, its updates scaled


def make(config: ml_collections.ConfigDict, spec: Any) -> Method:
  """The DBM for `config` and the data `spec`."""
  precision.require_float32(config, "dbm", "Gibbs sampling and AIS work with float32 "
                            "probabilities and free energies")
  s = settings_lib.resolve_stack(config.model)
  if len(s.layers) != 2:
    raise ConfigError(f"dbm has exactly 2 hidden layers (model.layers), got {s.layers}")
  dim = settings_lib.check_data(spec, "bernoulli", "dbm")
  a = settings_lib.resolve_ais(config.ais, "dbm")
  stage_steps = dbn_lib.resolve_stage_steps(s, optim.schedule_horizon(config.train),
                                            NUM_STAGES)
  tx = rbm_method.decayed_optimizer(config.optim, s.weight_decay, stage_steps)
  scale = s.learning_rate_scale_dbm
  tx_dbm = tx if scale == 1.0 else optax.chain(tx, optax.scale(scale))
  model = Dbm(s, a, tuple(spec.shape), (dim,) + s.layers, stage_steps, tx,
              int(config.data.batch_size), tx_dbm)
  protocol = {
      "estimator": "bound_plus_log_z: the mean-field lower bound on log p(v) plus log Z "
                   f"({s.mean_field_steps} fixed-point iterations); the test bound is "
                   "bound_plus_log_z - ais_log_z",
      "units": "nats per example",
      "model": f"DBM {'-'.join(map(str, model.sizes))}: modified-RBM pre-training, then "
               f"mean field + {s.num_chains} persistent chains; {stage_steps} steps per stage"
               + (f"; DBM-stage learning rate x{scale:g}" if scale != 1.0 else ""),
  }
  evaluator = rbm_method.ais_evaluator(
      name="ais", model="dbm", params_fn=lambda st: _dbm_params(st.params["dbm"]), a=a,
      visible="bernoulli", batch_size=model.batch_size,
      protocol={"annealed_state": "(v, h2) with h1 summed out analytically (S&H 2009)",
                "test_bound": "bound_plus_log_z - ais_log_z"})
  return Method(
      name="dbm", init=lambda key, batch: init(model, key, batch),
      train_step=lambda state, batch: train_step(model, state, batch),
      sample=lambda state, key, num: sample(model, state, key, num),
      evaluate=lambda state, batch, keys: evaluate(model, state, batch, keys),
      eval_protocol=protocol, evaluators=(evaluator, rbm_method.log_likelihood_evaluator(
          per_example="bound_plus_log_z", out="log_likelihood_bound",
          what="the test lower bound (mean-field bound with AIS on the DBM)")))


def _dbm_params(p: Params) -> Params:
  return {k: p[k] for k in ("w1", "w2", "b", "c1", "c2")}


def _views(p: Params) -> dict[str, tuple[Params, Params]]:
  """The pre-training RBMs as (up, down) parameter views of the DBM's arrays."""
  bottom_up = {"weights": 2.0 * p["w1"], "visible_bias": p["b"], "hidden_bias": p["c1"]}
  bottom_down = {"weights": p["w1"], "visible_bias": p["b"], "hidden_bias": p["c1"]}
  top_up = {"weights": p["w2"], "visible_bias": p["c1_top"], "hidden_bias": p["c2"]}
  top_down = {"weights": 2.0 * p["w2"], "visible_bias": p["c1_top"], "hidden_bias": p["c2"]}
  return {"rbm0": (bottom_up, bottom_down), "rbm1": (top_up, top_down)}


# Which DBM array each pre-training RBM's parameter is.
_NAMES = {"rbm0": {"weights": "w1", "visible_bias": "b", "hidden_bias": "c1"},
          "rbm1": {"weights": "w2", "visible_bias": "c1_top", "hidden_bias": "c2"}}


def init(model: Dbm, key: jax.Array, batch: dict[str, jax.Array]) -> TrainState:
  """Small random weights, visible biases from the batch, chains from noise."""
  s, (dim, h1, h2) = model.s, model.sizes
  keys = rng.split(key, "w1", "w2", "chains", "base")
  v = jnp.asarray(batch["x"], jnp.float32).reshape(batch["x"].shape[0], dim)
  bottom = energies.init_params(keys["w1"], visible_dim=dim, hidden_dim=h1,
                                init_std=s.init_std,
                                data_mean=jnp.mean(v, 0) if s.data_bias_init else None)
  p = {"w1": bottom["weights"], "b": bottom["visible_bias"], "c1": bottom["hidden_bias"],
       "w2": s.init_std * jax.random.normal(keys["w2"], (h1, h2), jnp.float32),
       "c1_top": jnp.zeros((h1,), jnp.float32), "c2": jnp.zeros((h2,), jnp.float32)}
  chain_keys = jax.random.split(keys["chains"], 5)
  draw = lambda k, n: (energies.chain_noise(k, "uniform", (s.num_chains, n))  # noqa: E731
                       < 0.5).astype(jnp.float32)
  chains = {"rbm0": draw(chain_keys[0], dim), "rbm1": draw(chain_keys[1], h1),
            "dbm": {"v": draw(chain_keys[2], dim), "h1": draw(chain_keys[3], h1),
                    "h2": draw(chain_keys[4], h2)}}
  opt_state = {"rbm0": model.tx.init({k: p[n] for k, n in _NAMES["rbm0"].items()}),
               "rbm1": model.tx.init({k: p[n] for k, n in _NAMES["rbm1"].items()}),
               "dbm": model.tx_dbm.init(_dbm_params(p))}
  model_state = {"data_mean": jnp.zeros((dim,), jnp.float32),
                 "data_batches": jnp.zeros((), jnp.float32), "chains": chains}
  return TrainState.create(key=keys["base"], params={"dbm": p}, opt_state=opt_state,
                           model_state=model_state)


def mean_field(*, v: jax.Array, params: Params, steps: int) -> tuple[jax.Array, jax.Array]:
  """q(h1)q(h2) by fixed-point iteration (S&H 2009, eq. 9-10): (μ1 [B, H1], μ2 [B, H2]).

  Started from the doubled bottom-up pass μ1 = σ(2vW1 + c1), μ2 = σ(μ1W2 + c2).
  """
  mu1 = jax.nn.sigmoid(2.0 * v @ params["w1"] + params["c1"])
  mu2 = jax.nn.sigmoid(mu1 @ params["w2"] + params["c2"])

  def body(carry, _):
    mu1, mu2 = carry
    mu1 = jax.nn.sigmoid(v @ params["w1"] + mu2 @ params["w2"].T + params["c1"])
    mu2 = jax.nn.sigmoid(mu1 @ params["w2"] + params["c2"])
    return (mu1, mu2), None

  (mu1, mu2), _ = jax.lax.scan(body, (mu1, mu2), None, length=steps)
  return mu1, mu2


def gibbs_sweep(key: jax.Array, chains: tuple[jax.Array, ...], params: Params
                ) -> tuple[jax.Array, ...]:
  """h1 ~ p(h1 | v, h2), then v ~ p(v | h1) and h2 ~ p(h2 | h1) (one sweep, per-chain noise)."""
  v, _, h2 = chains
  keys = jax.random.split(key, 3)
  bern = lambda k, p: (energies.chain_noise(k, "uniform", p.shape) < p  # noqa: E731
                       ).astype(jnp.float32)
  h1 = bern(keys[0], jax.nn.sigmoid(v @ params["w1"] + h2 @ params["w2"].T + params["c1"]))
  v = bern(keys[1], jax.nn.sigmoid(h1 @ params["w1"].T + params["b"]))
  h2 = bern(keys[2], jax.nn.sigmoid(h1 @ params["w2"] + params["c2"]))
  return v, h1, h2


def dbm_gradient(*, v: jax.Array, mu1: jax.Array, mu2: jax.Array,
                 chains: tuple[jax.Array, ...]) -> Params:
  """Model minus data statistics (a loss gradient): data from mean field, model from chains."""
  cv, ch1, ch2 = chains
  n, m = v.shape[0], cv.shape[0]
  data = {"w1": v.T @ mu1 / n, "w2": mu1.T @ mu2 / n, "b": jnp.mean(v, 0),
          "c1": jnp.mean(mu1, 0), "c2": jnp.mean(mu2, 0)}
  data = collectives.mean_over_devices(data)
  model = {"w1": cv.T @ ch1 / m, "w2": ch1.T @ ch2 / m, "b": jnp.mean(cv, 0),
           "c1": jnp.mean(ch1, 0), "c2": jnp.mean(ch2, 0)}
  return jax.tree.map(lambda a, b: a - b, model, data)


def _pretrain_branch(model: Dbm, name: str, v: jax.Array, keys: dict[str, jax.Array]):
  """Stage 0 or 1: one CD/PCD update of a modified RBM, written back into the DBM's arrays."""

  def branch(operand):
    params, opt_state, model_state = operand
    p = params["dbm"]
    x = v
    if name == "rbm1":   # data for the top RBM: the doubled bottom-up pass
      x = dbn_lib.propagate_up(keys["up"], v, _views(p)["rbm0"][0], model.s.propagate)
    up, down = _views(p)[name]
    own = {"chains": model_state["chains"][name]}
    x_model, own = rbm_method.negative_phase(key=keys["negative"], v=x, params=up,
                                             model_state=own, s=model.s,
                                             visible="bernoulli", down=down)
    grads = energies.cd_statistics(v_data=x, v_model=x_model, params=up)
    grads = collectives.mean_over_devices(grads)
    current = {k: p[n] for k, n in _NAMES[name].items()}
    new, new_opt = optim.apply_gradients(model.tx, grads, opt_state[name], current)
    recon = collectives.mean_over_devices(jnp.mean(jnp.sum(jnp.square(
        x - energies.visible_mean(energies.hidden_probs(x, up), down, "bernoulli")), -1)))
    p = {**p, **{n: new[k] for k, n in _NAMES[name].items()}}
    chains = {**model_state["chains"], name: own["chains"]}
    return (({"dbm": p}, {**opt_state, name: new_opt}, {**model_state, "chains": chains}),
            {"loss": recon, "reconstruction_error": recon,
             "update_norm": optax.tree.norm(grads)})

  return branch


def _dbm_branch(model: Dbm, v: jax.Array, keys: dict[str, jax.Array], step: jax.Array):
  """Stage 2: mean field on the data, `cd_steps` sweeps of the persistent chains, one update.

  On the stage's first step the chains (started from noise at init) first run
  `chain_burn_in` sweeps with the pre-trained weights; burn-in sweep t draws
  from fold_in(key, cd_steps + t), keys the regular sweeps 0..cd_steps-1 do not use.
  """

  def branch(operand):
    params, opt_state, model_state = operand
    p = params["dbm"]
    mu1, mu2 = mean_field(v=v, params=p, steps=model.s.mean_field_steps)

    def body(chains, t):
      return gibbs_sweep(jax.random.fold_in(keys["negative"], t), chains, p), None

    start = tuple(model_state["chains"]["dbm"][k] for k in ("v", "h1", "h2"))
    first = step == (NUM_STAGES - 1) * model.stage_steps
    burn_in = jnp.where(first, model.s.chain_burn_in, 0)
    start = jax.lax.fori_loop(0, burn_in, lambda t, c: gibbs_sweep(
        jax.random.fold_in(keys["negative"], model.s.cd_steps + t), c, p), start)
    chains, _ = jax.lax.scan(body, start, jnp.arange(model.s.cd_steps))
    grads = dbm_gradient(v=v, mu1=mu1, mu2=mu2, chains=chains)
    new, new_opt = optim.apply_gradients(model.tx_dbm, grads, opt_state["dbm"],
                                         _dbm_params(p))
    recon = collectives.mean_over_devices(jnp.mean(jnp.sum(jnp.square(
        v - jax.nn.sigmoid(mu1 @ p["w1"].T + p["b"])), -1)))
    return (({"dbm": {**p, **new}}, {**opt_state, "dbm": new_opt},
             {**model_state, "chains": {**model_state["chains"],
                                        "dbm": dict(zip(("v", "h1", "h2"), chains))}}),
            {"loss": recon, "reconstruction_error": recon,
             "update_norm": optax.tree.norm(grads)})

  return branch


def train_step(model: Dbm, state: TrainState, batch: dict[str, jax.Array]
               ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One update of this step's stage: bottom RBM, top RBM, then the DBM."""
  keys = state.keys("up", "negative")
  v = jnp.asarray(batch["x"], jnp.float32).reshape(batch["x"].shape[0], model.sizes[0])
  stage = dbn_lib.stage_of(state.step, model.stage_steps, NUM_STAGES)
  branches = [_pretrain_branch(model, "rbm0", v, keys), _pretrain_branch(model, "rbm1", v, keys),
              _dbm_branch(model, v, keys, state.step)]
  (params, opt_state, model_state), metrics = jax.lax.switch(
      stage, branches, (state.params, state.opt_state, state.model_state))
  model_state = rbm_method.running_mean(model_state, v)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state,
                       model_state=model_state), {**metrics, "stage": stage.astype(jnp.float32)}


def _entropy(mu: jax.Array) -> jax.Array:
  mu = jnp.clip(mu, 1e-7, 1 - 1e-7)
  return -jnp.sum(mu * jnp.log(mu) + (1 - mu) * jnp.log1p(-mu), -1)


def mean_field_bound_plus_log_z(*, v: jax.Array, params: Params, steps: int) -> jax.Array:
  """E_q[-E(v, h1, h2)] + H(q) per example, q the mean-field posterior: [B]."""
  mu1, mu2 = mean_field(v=v, params=params, steps=steps)
  neg_energy = (v @ params["b"] + mu1 @ params["c1"] + mu2 @ params["c2"]
                + jnp.sum((v @ params["w1"]) * mu1, -1) + jnp.sum((mu1 @ params["w2"]) * mu2, -1))
  return neg_energy + _entropy(mu1) + _entropy(mu2)


def log_partition_exact(params: Params) -> jax.Array:
  """log Z by enumerating v and h2, h1 summed out analytically (tiny models only)."""
  dim, h2_dim = params["b"].shape[0], params["c2"].shape[0]
  states = energies.all_binary(dim + h2_dim)
  v, h2 = states[:, :dim], states[:, dim:]
  terms = (v @ params["b"] + h2 @ params["c2"]
           + jnp.sum(jax.nn.softplus(v @ params["w1"] + h2 @ params["w2"].T + params["c1"]), -1))
  return jax.nn.logsumexp(terms)


def evaluate(model: Dbm, state: TrainState, batch: dict[str, jax.Array], keys: jax.Array
             ) -> dict[str, jax.Array]:
  """The mean-field bound plus log Z (deterministic; `keys` unused) and a reconstruction error."""
  del keys
  p = state.params["dbm"]
  v = jnp.asarray(batch["x"], jnp.float32).reshape(batch["x"].shape[0], model.sizes[0])
  mu1, _ = mean_field(v=v, params=p, steps=model.s.mean_field_steps)
  return {"bound_plus_log_z": mean_field_bound_plus_log_z(
              v=v, params=p, steps=model.s.mean_field_steps),
          "reconstruction_error": jnp.sum(jnp.square(
              v - jax.nn.sigmoid(mu1 @ p["w1"].T + p["b"])), -1)}


def sample(model: Dbm, state: TrainState, key: jax.Array, num: int) -> jax.Array:
  """`sample_steps` Gibbs sweeps from noise; the mean p(v | h1) of the last h1."""
  p = state.params["dbm"]
  keys = jax.random.split(key, 4)
  dim, h1, h2 = model.sizes
  draw = lambda k, n: (energies.chain_noise(k, "uniform", (num, n)) < 0.5  # noqa: E731
                       ).astype(jnp.float32)
  chains = (draw(keys[0], dim), draw(keys[1], h1), draw(keys[2], h2))

  def body(chains, t):
    return gibbs_sweep(jax.random.fold_in(keys[3], t), chains, p), None

  chains, _ = jax.lax.scan(body, chains, jnp.arange(model.s.sample_steps))
  return jax.nn.sigmoid(chains[1] @ p["w1"].T + p["b"]).reshape((num,) + model.shape)

