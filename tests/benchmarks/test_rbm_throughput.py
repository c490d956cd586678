"""benchmarks/rbm_throughput.py: a smoke run writes its JSON with positive rates."""

import json

import pytest

from benchmarks import rbm_throughput


@pytest.mark.slow
def test_quick_run_writes_rates(tmp_path):
  out = tmp_path / "rbm.json"
  payload = rbm_throughput.main(["--quick", "--repeats", "1", "--out", str(out)])
  assert json.loads(out.read_text()) == json.loads(json.dumps(payload))
  for row in payload["train"].values():
    assert row["steps_per_sec"] > 0 and row["examples_per_sec"] == 16 * row["steps_per_sec"]
  assert payload["ais"]["run_temperatures_per_sec"] > 0
  assert payload["quick"] and set(payload["train"]) == {"cd1", "cd2", "pcd1"}
