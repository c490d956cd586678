"""Progress bars: the train bar's clock starts after compilation; phases have bars."""

import time
import types

import numpy as np

from jaxgen.engine import evaluation, logs, parallel
from jaxgen.core.evaluators import SampleBased


def test_the_train_bar_clock_starts_after_the_first_step(capsys):
  progress = logs.Progress(100, 0, "toy", enabled=True)
  time.sleep(0.4)                       # compiling the first step
  progress.start(1)
  progress.update(2)
  elapsed = progress._bar.format_dict["elapsed"]  # pylint: disable=protected-access
  progress.close()
  assert elapsed < 0.3, elapsed
  err = capsys.readouterr().err
  assert "toy: compiling the train step" in err and "2/100" in err


def test_sample_based_evaluation_shows_its_chunks(capsys):
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel

  class Method:  # the evaluation reads only .sample
    @staticmethod
    def sample(state, key, num):
      del state
      return jax.random.normal(key, (num, 2))

  counter = SampleBased(name="counter", num_samples=25, chunk_size=10,
                        fn=lambda chunks: {"n": float(sum(len(c) for c in chunks))})
  spec = types.SimpleNamespace(name="toy")
  runner = evaluation.Evaluation(Method, spec, [counter],
                                 strategy=parallel.Strategy("jit", 1), seeds=[0],
                                 multi=False, batch_size=8, progress=True)
  means, _ = runner.run(jnp.zeros(()), None, step=0)
  assert float(np.asarray(means["n"])) == 25
  err = capsys.readouterr().err
  assert "counter: sampling" in err and "/25 [" in err   # total 25 samples
