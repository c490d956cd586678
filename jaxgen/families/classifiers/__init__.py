"""Generative against discriminative classifiers (Ng & Jordan 2002).

* `gaussian_nb`: Gaussian naive Bayes, fit in closed form as scikit-learn's
  `GaussianNB` (per-class means and variances, `var_smoothing`, class
  priors); predictive class probabilities by Bayes' rule; samples x | y from
  the class-conditional model (`sample(state, key, num, labels=...)`).
* `logistic_regression`: multinomial logistic regression with an L2 penalty
  in sklearn's convention (`model.inverse_regularization` is sklearn's C),
  trained by an optax optimizer.

Both evaluate per-example accuracy, error and −log p(y | x) on labelled data
(`digits`, `npz:` with labels, ...). Layout: `settings`, `losses` (the fits
and objectives as pure functions), `method` (make_nb, make_lr). See
docs/classical.md and experiments/generative_vs_discriminative.py.

  result = jaxgen.train("gaussian_nb")          # digits, one closed-form fit
  result.metrics["eval"]["accuracy"]
"""

from jaxgen import registry
from jaxgen.families.classifiers import losses, method, settings
from jaxgen.families.classifiers.losses import (
    cross_entropy,
    fit_gaussian_nb,
    joint_log_likelihood,
    l2_strength,
    predict_log_proba,
)
from jaxgen.families.classifiers.method import make_lr, make_nb
from jaxgen.families.classifiers.settings import (
    TRAIN_ON,
    LogisticSettings,
    NaiveBayesSettings,
    default_config_lr,
    default_config_nb,
)

registry.register(
    "gaussian_nb", family="classifiers",
    description="Gaussian naive Bayes (generative classifier), closed-form fit as "
                "sklearn; samples x | y",
    default_config=default_config_nb, make=make_nb)
registry.register(
    "logistic_regression", family="classifiers",
    description="multinomial logistic regression with L2 (discriminative), optax",
    default_config=default_config_lr, make=make_lr)

__all__ = ["LogisticSettings", "NaiveBayesSettings", "TRAIN_ON", "cross_entropy",
           "default_config_lr", "default_config_nb", "fit_gaussian_nb",
           "joint_log_likelihood", "l2_strength", "losses", "make_lr", "make_nb",
           "method", "predict_log_proba", "settings"]
