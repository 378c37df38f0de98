"""The named configs (a minGPT-style table): name -> (one-line description, fields that
differ from ``RunConfig``'s defaults). Data only, plus the two look-ups."""

from __future__ import annotations

from typing import Any

from core.config import ConfigError, RunConfig, from_dict, show_value

_NIELSEN = dict(
    arch="mlp", width=30, activation="sigmoid", init="nielsen", bias_init="normal",
    sigma_b=1.0, dataset="mnist", n_train=1000, n_test=1000, loss="sigmoid_ce",
    optimizer="sgd", lr=0.1, batch_size=0, l2=5.0, steps=500, every=5, eval_every=0,
)
# Orhan's 30-layer linear net. "Standard" here is uniform with variance 1/n (Glorot's
# U[+-1/sqrt(n)] has variance 1/(3n): over 30 layers the signal shrinks to ~3e-7 and all three
# nets would sit still, the opposite of Orhan's premise). Adam keeps Fold 1 from diverging.
_DEEP_LINEAR = dict(
    arch="mlp", depth=30, width=32, input_dim=32, activation="linear", dataset="teacher",
    n_train=1024, n_test=256, noise=0.0, loss="quadratic", optimizer="adam", lr=1e-3,
    batch_size=64, steps=400, every=20,
)

PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("A 6-layer tanh MLP with Xavier init learning the 2-D spiral.", {}),
    "nielsen-2": ("Nielsen's [784,30,30,10] sigmoid net, full-batch GD on 1000 MNIST images.",
                  dict(_NIELSEN, depth=2)),
    "nielsen-3": ("Nielsen's [784,30,30,30,10]: the first layer learns ~5x slower than the last.",
                  dict(_NIELSEN, depth=3)),
    "nielsen-4": ("Nielsen's [784,30,30,30,30,10]: speeds 0.003/0.017/0.070/0.285 at init.",
                  dict(_NIELSEN, depth=4)),
    "nielsen-1": ("Nielsen's [784,30,10]: the shallow baseline of the depth table.",
                  dict(_NIELSEN, depth=1)),
    "nielsen-minibatch-4": ("Nielsen's accuracy run on our 4000 images: batch 10, lambda 0.4 "
                            "(his 5.0 x 4000/50000).",
                            dict(_NIELSEN, depth=4, n_train=4000, n_test=1000, batch_size=10,
                                 l2=0.4, steps=12000, every=400)),
    "deep-linear-fold0": ("Orhan: 30-layer linear net, uniform init with variance 1/n, "
                          "learning a teacher map.",
                          dict(_DEEP_LINEAR, init="xavier_uniform")),
    "deep-linear-fold1": ("Orhan: the same draw, every matrix folded once (degenerate, rank/2).",
                          dict(_DEEP_LINEAR, init="fold", fold_k=1, init_gain=3 ** 0.5)),
    "deep-linear-ortho": ("Orhan: the same with orthogonal init (least degenerate).",
                          dict(_DEEP_LINEAR, init="orthogonal")),
    "glorot-standard-tanh": ("Glorot & Bengio: 5x1000-ish tanh net, standard U[+-1/sqrt(n)] init.",
                             dict(depth=5, width=256, activation="tanh", init="glorot_standard",
                                  dataset="mnist", n_train=2000, n_test=500, lr=0.05,
                                  batch_size=32, steps=3000, every=20)),
    "glorot-normalized-tanh": ("Glorot & Bengio: the same net with normalised (Xavier) init.",
                               dict(depth=5, width=256, activation="tanh", init="xavier_uniform",
                                    dataset="mnist", n_train=2000, n_test=500, lr=0.05,
                                    batch_size=32, steps=3000, every=20)),
    "glorot-sigmoid": ("Glorot & Bengio: sigmoid net, standard init: the top layer saturates at 0.",
                       dict(depth=4, width=256, activation="sigmoid", init="glorot_standard",
                            dataset="mnist", n_train=2000, n_test=500, lr=0.1,
                            batch_size=10, steps=3000, every=20)),
    "glorot-tanh-quadratic": ("glorot-standard-tanh with the quadratic cost: the plateau.",
                              dict(depth=5, width=256, activation="tanh",
                                   init="glorot_standard", dataset="mnist", n_train=2000,
                                   n_test=500, lr=0.05, batch_size=32, steps=1000, every=20,
                                   loss="quadratic")),
    "glorot-softsign": ("glorot-sigmoid's net with softsign: no saturation cascade.",
                        dict(depth=4, width=256, activation="softsign", init="glorot_standard",
                             dataset="mnist", n_train=2000, n_test=500, lr=0.1, batch_size=10,
                             steps=3000, every=20)),
    "relu-he": ("A 20-layer ReLU MLP with He init on MNIST: gradients stay healthy.",
                dict(depth=20, width=128, activation="relu", init="he", dataset="mnist",
                     n_train=2000, n_test=500, lr=0.02, batch_size=64, steps=2000)),
    "sigmoid-deep": ("A 20-layer sigmoid MLP (Glorot standard init): the gradient vanishes.",
                     dict(depth=20, width=64, activation="sigmoid", init="glorot_standard",
                          dataset="mnist", n_train=2000, n_test=500, lr=0.1, batch_size=64,
                          steps=2000)),
    "residual-deep": ("The same 20-layer sigmoid MLP with identity skips: layer 1 gets gradient.",
                      dict(depth=20, width=64, activation="sigmoid", init="glorot_standard",
                           residual=True, dataset="mnist", n_train=2000, n_test=500, lr=0.1,
                           batch_size=64, steps=2000)),
    "batchnorm-deep": ("The same 20-layer sigmoid MLP with batch norm before each activation.",
                       dict(depth=20, width=64, activation="sigmoid", init="glorot_standard",
                            norm="batch", dataset="mnist", n_train=2000, n_test=500, lr=0.1,
                            batch_size=64, steps=2000)),
    "exploding-lr": ("A ReLU net with a learning rate far too large: watch it diverge.",
                     dict(depth=8, width=64, activation="relu", init="he", dataset="spiral",
                          lr=50.0, steps=200, every=1)),
    "exploding-lr-clipped": ("exploding-lr with the gradient norm clipped to 1: it stays finite.",
                             dict(depth=8, width=64, activation="relu", init="he",
                                  dataset="spiral", lr=50.0, clip_norm=1.0, steps=200, every=1)),
    "rnn-long": ("A tanh RNN on a T=100 recall task: the gradient dies before step 1.",
                 dict(arch="rnn", depth=1, width=64, activation="tanh", init="torch_default",
                      dataset="recall", seq_len=100, n_train=2000, n_test=500, optimizer="adam",
                      lr=0.003, batch_size=64, steps=1500, every=10)),
    "gru-default": ("A GRU with PyTorch's default init on the same task: at init it also fades.",
                    dict(arch="gru", depth=1, width=64, init="torch_default", dataset="recall",
                         seq_len=100, n_train=2000, n_test=500, optimizer="adam", lr=0.003,
                         batch_size=64, steps=1500, every=10)),
    "gru-long": ("A GRU whose update gate starts in 'keep' mode: the additive path carries it.",
                 dict(arch="gru", depth=1, width=64, init="torch_default", gate_bias=4.0,
                      dataset="recall", seq_len=100, n_train=2000, n_test=500,
                      optimizer="adam", lr=0.003, batch_size=64, steps=1500, every=10)),
    # Glorot & Bengio's own size (5 x 1000, SGD mini-batch 10) on our MNIST. Spectra and the
    # test set are measured rarely: one SVD of the 1000 x 1000 matrices costs ~100 steps.
    "glorot-tanh-1000": ("Glorot & Bengio's size: 5 tanh layers of 1000, standard init, SGD "
                         "batch 10, lr 0.1, 4000 MNIST images (layer 1 saturates last here).",
                         dict(depth=5, width=1000, activation="tanh", init="glorot_standard",
                              dataset="mnist", n_train=4000, n_test=500, lr=0.1, batch_size=10,
                              steps=3000, every=100, spectrum_every=1000, eval_every=500)),
    # Glorot & Bengio's own conditions: Shapeset-3x2 (a fresh batch of 10 every step, the
    # paper's infinite stream), 5 x 1000, standard init unless named. The paper tunes its
    # learning rates per model without printing them; 0.1 (tanh/softsign), 0.5 (sigmoid,
    # whose derivative is at most 1/4) and 0.03 (normalised tanh: at 0.1 its loss jumps from
    # 2.2 to 20-60 within 50 steps, every layer saturates by step 150 and it stays at chance)
    # are our choices. One budget for all four (lesson 3 compares their test errors); weight
    # spectra only at the first and last snapshot (spectrum_every=0 would mean every
    # snapshot, ~1.5 s each at 1000 x 1000). Issue 17.
    **{f"shapeset-{act}-1000{suffix}": (
        f"Glorot & Bengio Fig. {fig}: 5 x 1000 {act}, {name} init, Shapeset-3x2, batch 10.",
        dict(depth=5, width=1000, activation=act, init=init, dataset="shapeset",
             n_train=1000, n_test=1000, lr=lr, batch_size=10, steps=6000, every=50,
             spectrum_every=1_000_000, eval_every=500))
       for act, suffix, init, name, fig, lr in (
           ("sigmoid", "", "glorot_standard", "standard", "2", 0.5),
           ("tanh", "", "glorot_standard", "standard", "3", 0.1),
           ("softsign", "", "glorot_standard", "standard", "4", 0.1),
           ("tanh", "-normalized", "xavier_uniform", "normalised", "3 vs 6-7", 0.03),
       )},
}


def preset(name: str) -> RunConfig:
    """The config of a named preset (``_`` and ``-`` are the same, case does not matter)."""
    key = str(name).strip().lower().replace("_", "-")
    if key not in PRESETS:
        raise ConfigError("preset", f"unknown preset {show_value(name)}; `gradlab presets` "
                          f"lists all {len(PRESETS)} (e.g. nielsen-4, gru-long)")
    return from_dict(PRESETS[key][1])


def preset_descriptions() -> dict[str, str]:
    """Preset name -> its one-line description, in table order."""
    return {k: v[0] for k, v in PRESETS.items()}


__all__ = ["PRESETS", "preset", "preset_descriptions"]
