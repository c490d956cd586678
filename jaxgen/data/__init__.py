"""Datasets for jaxgen: sources, transforms and a checkpointable training stream on grain.

The whole lifecycle:

  from jaxgen import data
  cfg = data.default_config()            # every option and its default
  cfg.name = "toy2d:ring8"
  ds = data.from_config(cfg)             # or data.load_dataset("toy2d:ring8")
  print(ds.spec.describe())
  it = data.train_iterator(ds, batch_size=128, seed=0)
  batch = next(it)                       # {"x": float32 [128, 2], "label": int32 [128]}
  state = it.get_state()                 # JSON-serializable; set_state resumes bit-exactly
  for batch in data.eval_batches(ds, split="test", batch_size=128):
    batch["mask"]                        # 0 for the padding of the last batch

See docs/data.md for the dataset names and options.
"""

from jaxgen.data._options import BINARIZE, SCALES, DataOptions, default_config
from jaxgen.data._pipeline import (
    Dataset,
    TrainIterator,
    eval_arrays,
    eval_batches,
    eval_split,
    from_config,
    load_dataset,
    train_iterator,
    train_pipeline,
)
from jaxgen.data._files import read_idx
from jaxgen.data._registry import list_datasets, relocate, source_record
from jaxgen.data._spec import DataSpec

__all__ = [
    "BINARIZE",
    "SCALES",
    "DataOptions",
    "DataSpec",
    "Dataset",
    "TrainIterator",
    "default_config",
    "eval_arrays",
    "eval_batches",
    "eval_split",
    "from_config",
    "list_datasets",
    "load_dataset",
    "read_idx",
    "relocate",
    "source_record",
    "train_iterator",
    "train_pipeline",
]
