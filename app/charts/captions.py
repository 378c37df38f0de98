"""One sentence under each playground panel, saying what to look for."""

from __future__ import annotations

#: One caption per panel builder (the keys are the builders' names).
CAPTIONS: dict[str, str] = {
    "gradient_bars": "Gradient size per layer on a log scale: dark blue hatched bars have "
                     "vanished (< 1e-6), vermillion crossed ones explode (> 1e3), plain green "
                     "ones can still learn.",
    "neuron_bars": "dC/db of the first six neurons of each hidden layer on one shared scale "
                   "(Nielsen): tiny bars near the input mean those neurons learn slowly.",
    "speed_curves": "Speed of learning ||dC/db|| of each hidden layer as training goes on "
                    "(log scale): the layers near the input sit lowest when gradients vanish.",
    "loss_curves": "Training and test loss (left axis) and accuracy (right axis, 0 to 1) "
                   "against the optimiser step.",
    "spectrum": "Singular values of the weights (and input-output Jacobian), log scale: mass "
                "far from sigma = 1 shrinks or blows up signals (the title says which step).",
    "activation_panel": "How each hidden layer's activations are distributed, and the fraction "
                        "of units stuck in the flat (saturated) part of the non-linearity.",
    "grad_hist_panel": "How the back-propagated gradients |dC/dz| are distributed in each layer "
                       "(log10): a histogram sliding left from layer to layer is vanishing.",
    "update_ratio": "Size of each update relative to the weights, per layer (log scale); "
                    "Karpathy's rule of thumb is about 1e-3: far below it nothing is learned.",
}

#: Captions of panels that draw something else for a sequence model (RNN/GRU): the
#: ``spectrum`` builder shows the gradient reaching each time step instead.
SEQUENCE_CAPTIONS: dict[str, str] = {
    "spectrum": "How much gradient ||dL/dh_t|| reaches each time step t (log scale): in a "
                "plain RNN it fades long before the first steps; a GRU's additive path can "
                "carry it back.",
}


def caption(panel: str, sequence: bool = False) -> str | None:
    """The caption under ``panel`` (a builder's name); ``sequence``: the config is an
    RNN/GRU."""
    return (SEQUENCE_CAPTIONS.get(panel) if sequence else None) or CAPTIONS.get(panel)
