"""Linear learning-rate warm-up (Ho et al. 2020 warm up Adam over 5000 steps)."""

from __future__ import annotations


class LinearWarmup:
    r"""``LinearWarmup(optimizer, warmup_steps)``: ramp ``optimizer.lr`` linearly to its
    initial value, then hold it.

    Convention (PyTorch's ``LRScheduler``: construct the schedule once, call
    ``scheduler.step()`` after each ``optimizer.step()``). Counting optimizer updates
    from 1, update ``k`` runs with::

        lr_k = base_lr * min(1, k / warmup_steps)

    so the first update already moves the weights (``base_lr / warmup_steps``) and
    update number ``warmup_steps`` is the first at the full rate. ``base_lr`` is
    ``optimizer.lr`` when the schedule is built; ``warmup_steps = 0`` means no warm-up.
    (Ho et al.'s TensorFlow code uses ``global_step / warmup`` with a 0-based step,
    i.e. a zero learning rate for the very first update; here it is shifted by one.)

    The constructor sets ``optimizer.lr = lr_1``; ``step()`` counts one finished update
    (``last_step``) and sets the rate for the next, ``lr_{last_step + 1}``.
    """

    def __init__(self, optimizer, warmup_steps: int):
        if int(warmup_steps) != warmup_steps or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be a non-negative integer, got {warmup_steps}")
        self.optimizer = optimizer
        self.warmup_steps = int(warmup_steps)
        self.base_lr = float(optimizer.lr)
        self.last_step = 0  # optimizer updates completed so far
        self.optimizer.lr = self.lr_at(1)

    def lr_at(self, k: int) -> float:
        """The learning rate of update ``k`` (1-based): ``base_lr * min(1, k / warmup_steps)``."""
        if self.warmup_steps == 0:
            return self.base_lr
        return self.base_lr * min(1.0, k / self.warmup_steps)

    def step(self) -> None:
        """Call after ``optimizer.step()``: sets ``optimizer.lr`` for the next update."""
        self.last_step += 1
        self.optimizer.lr = self.lr_at(self.last_step + 1)

    def get_last_lr(self) -> float:
        """The learning rate the next ``optimizer.step()`` will use."""
        return self.optimizer.lr

    def state_dict(self) -> dict:
        return {"base_lr": self.base_lr, "warmup_steps": self.warmup_steps, "last_step": self.last_step}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the schedule and set ``optimizer.lr`` for the next update."""
        self.base_lr = float(state_dict["base_lr"])
        self.warmup_steps = int(state_dict["warmup_steps"])
        self.last_step = int(state_dict["last_step"])
        self.optimizer.lr = self.lr_at(self.last_step + 1)

    def __repr__(self) -> str:
        return (f"LinearWarmup(base_lr={self.base_lr}, warmup_steps={self.warmup_steps}, "
                f"last_step={self.last_step})")
