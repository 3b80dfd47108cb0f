"""Every differentiable op, grouped by kind; each module keeps its ``Function``
classes (forward and backward side by side) next to the public function that
checks the arguments and applies them."""
