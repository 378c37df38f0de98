"""The one table of choice names (activations, initialisers, optimisers, ...) with a
one-line help text each. ``core.config`` takes its allowed values from it, ``core.registry``
re-exports :func:`choices` beside the callables, and the app's controls show the help.

Torch-free on purpose: ``core.config`` (and with it URL parsing in the app) imports it.
"""

from __future__ import annotations

# kind -> ordered {name: one-line help}. The order is the order widgets and messages show.
_TABLE: dict[str, dict[str, str]] = {
    "arch": {
        "mlp": "a stack of fully connected layers",
        "rnn": "one tanh (or other) recurrent cell unrolled over time",
        "gru": "a gated recurrent unit unrolled over time",
    },
    "activation": {
        "sigmoid": "1/(1+e^-x): flat at both ends, slope at most 1/4",
        "tanh": "zero-centred, slope 1 at 0, flat beyond |x| ~ 2",
        "relu": "max(0, x): no flat top, but dead units below 0",
        "leaky_relu": "ReLU with slope 0.01 below 0",
        "elu": "ReLU with a smooth negative tail towards -1",
        "gelu": "x times the Gaussian CDF of x",
        "selu": "scaled ELU that keeps unit variance (with LeCun init)",
        "softsign": "x/(1+|x|): like tanh with polynomial tails",
        "hardtanh": "clamp(x, -1, 1): slope exactly 1 or 0",
        "linear": "the identity: a deep linear net",
        "scaled_sigmoid": "4 sigmoid(x) - 2: slope 1 and value 0 at 0",
    },
    "init": {
        "nielsen_large": "W ~ N(0, 1): Nielsen's 'large' init",
        "nielsen": "W ~ N(0, 1/n_in), b ~ N(0, 1): Nielsen's default",
        "glorot_standard": "U[±1/√n_in]: Glorot & Bengio's 'standard'",
        "xavier_uniform": "U[±√(6/(n_in+n_out))]: Xavier, uniform",
        "xavier_normal": "N(0, 2/(n_in+n_out)): Xavier, normal",
        "he": "N(0, 2/n_in): Kaiming He, for ReLU",
        "lecun": "N(0, 1/n_in): LeCun, for SELU",
        "orthogonal": "gain × a random orthogonal matrix",
        "gaussian": "N(0, σ_w²/n_in), b ~ N(0, σ_b²): mean-field",
        "fold": "standard init folded k times (Orhan)",
        "identity": "gain × I: deep linear nets",
        "torch_default": "PyTorch's own defaults",
    },
    "bias_init": {
        "auto": "what the initialiser prescribes (mostly zero)",
        "zero": "b = 0",
        "normal": "b ~ N(0, σ_b²)",
        "uniform": "b ~ U[±1/√n_in], as PyTorch",
    },
    "norm": {
        "none": "no normalisation",
        "batch": "batch norm before each activation",
        "layer": "layer norm before each activation",
    },
    "dataset": {
        "mnist": "5,000 real MNIST digits, fixed split",
        "spiral": "2-D toy: two interleaved spirals",
        "circles": "2-D toy: two concentric circles",
        "xor": "2-D toy: the four XOR quadrants",
        "blobs": "2-D toy: Gaussian blobs",
        "teacher": "y = T x, a random linear teacher map (deep linear nets)",
        "adding": "sequence: sum of the two marked numbers (regression)",
        "recall": "sequence: class of the token shown at t = 0, then noise",
        "shapeset": "Shapeset-3x2 (Glorot & Bengio): 32x32 images of 1-2 shapes, 9 classes",
    },
    "loss": {
        "softmax_ce": "softmax cross-entropy",
        "sigmoid_ce": "sigmoid outputs with cross-entropy per output (Nielsen)",
        "quadratic": "½‖softmax(out) − y‖² (Glorot & Bengio's comparison)",
    },
    "optimizer": {
        "sgd": "plain (mini-batch) gradient descent",
        "momentum": "SGD with momentum",
        "adam": "Adam: a per-weight step size",
    },
    "device": {
        "auto": "a GPU when there is one (cuda > mps > cpu)",
        "cpu": "the CPU",
        "cuda": "an NVIDIA GPU",
        "mps": "Apple's GPU",
    },
}

KINDS: tuple[str, ...] = tuple(_TABLE)


def choices(kind: str) -> dict[str, str]:
    """Ordered name -> one-line help for one kind of choice ("activation", "init",
    "optimizer", "bias_init", "norm", "loss", "dataset", "arch", "device"); KeyError for an
    unknown kind. A fresh copy: callers may keep or change it."""
    return dict(_TABLE[kind])


def names(kind: str) -> tuple[str, ...]:
    """The names of one kind, in table order."""
    return tuple(_TABLE[kind])


__all__ = ["KINDS", "choices", "names"]
