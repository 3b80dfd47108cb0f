"""The README's examples run as written."""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_every_readme_python_block_runs():
    for block in _python_blocks():
        exec(compile(block, str(README), "exec"), {})


def test_readme_mlp_example_loss_falls():
    block = next(b for b in _python_blocks() if "losses" in b)
    ns = {}
    exec(compile(block, str(README), "exec"), ns)
    losses = ns["losses"]
    assert np.isfinite(losses).all()
    assert losses[-1] < losses[0] / 10
