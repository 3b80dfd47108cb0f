"""Optimizers and training utilities, with PyTorch's names and update rules.

- ``SGD``, ``Adam``, ``AdamW`` (``Optimizer`` is their base): ``opt.zero_grad()``,
  ``opt.step()``, ``opt.lr``, ``opt.state_dict()`` / ``opt.load_state_dict()``.
- ``clip_grad_norm_(params, max_norm)``: global L2-norm clipping; returns the norm.
- ``LinearWarmup(opt, warmup_steps)``: linear learning-rate warm-up.
- ``EMA(model, decay=0.9999)``: exponential moving average of the weights.

Each update equation is written out in its class's docstring.
"""

from .adam import Adam, AdamW
from .clip import clip_grad_norm_
from .ema import EMA
from .lr_schedule import LinearWarmup
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "clip_grad_norm_", "LinearWarmup", "EMA"]
