"""Networks with per-layer taps. No training code here.

``forward(x, taps=True)`` also returns a ``Taps`` record: the pre-activations ``z`` of every
hidden layer (with ``retain_grad`` so backward fills dC/dz) and the activations ``a``; the
probes turn them into statistics. With ``taps=False`` the forward is the plain one, so a
step that takes no snapshot pays nothing for instrumentation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from core.config import RunConfig
from core.registry import ACTIVATIONS, act_prime, init_layer


@dataclass
class Taps:
    z: list[torch.Tensor] = field(default_factory=list)   # per hidden layer: (B, n) pre-act
    a: list[torch.Tensor] = field(default_factory=list)   # per hidden layer: (B, n) phi(z)
    h_time: list[torch.Tensor] = field(default_factory=list)  # rnn/gru: (B, H) per time step


class MLP(nn.Module):
    """x -> [Linear -> (norm) -> phi] x depth -> Linear. With ``residual`` every hidden block
    after the first adds its input: h_l = h_{l-1} + phi(norm(W_l h_{l-1} + b_l))."""

    def __init__(self, cfg: RunConfig, n_in: int, n_out: int) -> None:
        super().__init__()
        self.act_name = cfg.activation
        self.phi = ACTIVATIONS[cfg.activation]
        self.residual = cfg.residual
        self.norm_kind = cfg.norm
        n = cfg.width
        dims = [n_in] + [n] * cfg.depth
        # With a norm layer the Linear needs no bias: the norm's shift (beta) plays its role.
        has_bias = cfg.norm == "none"
        self.hidden = nn.ModuleList(
            nn.Linear(dims[i], dims[i + 1], bias=has_bias) for i in range(cfg.depth)
        )
        if cfg.norm == "batch":
            self.norms = nn.ModuleList(nn.BatchNorm1d(n) for _ in range(cfg.depth))
        elif cfg.norm == "layer":
            self.norms = nn.ModuleList(nn.LayerNorm(n) for _ in range(cfg.depth))
        else:
            self.norms = nn.ModuleList()
        self.out = nn.Linear(n, n_out)

    def init_(self, cfg: RunConfig, g: torch.Generator) -> None:
        for lin in list(self.hidden) + [self.out]:
            init_layer(lin.weight, lin.bias, cfg, g)
        for nm in self.norms:
            nm.reset_parameters()

    # The bias that feeds each hidden non-linearity: its gradient is Nielsen's delta summed
    # over the batch (dC/db = mean_batch dC/dz when the loss is a batch mean).
    def delta_biases(self) -> list[torch.Tensor]:
        if self.norms:
            return [nm.bias for nm in self.norms]
        return [lin.bias for lin in self.hidden]

    def weights(self) -> list[torch.Tensor]:
        """Weight matrices in order: hidden layers, then the output layer."""
        return [lin.weight for lin in self.hidden] + [self.out.weight]

    def layer_names(self) -> list[str]:
        return [f"hidden{i + 1}" for i in range(len(self.hidden))] + ["output"]

    def forward(self, x: torch.Tensor, taps: bool = False) -> tuple[torch.Tensor, Taps | None]:
        """(logits, taps or None). The Linear layers are applied as F.linear on their own
        parameters (a small net's step is mostly per-call overhead), so module hooks on
        ``hidden`` / ``out`` are not called; nothing in the project sets any."""
        t = Taps() if taps else None
        h = x                                                   # (B, n_in)
        norms = self.norms if len(self.norms) else None         # module lookups hoisted
        residual, phi = self.residual, self.phi
        for i, lin in enumerate(self.hidden):
            z = F.linear(h, lin.weight, lin.bias)               # lin(h), without the
            if norms is not None:                               # module-call overhead
                z = norms[i](z)
            if t is not None:
                if z.requires_grad:
                    z.retain_grad()
                t.z.append(z)
            a = phi(z)
            if t is not None:
                t.a.append(a)
            h = h + a if (residual and i > 0) else a
        return F.linear(h, self.out.weight, self.out.bias), t   # (B, n_out)

    @torch.no_grad()
    def jacobian_factors(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer Jacobians d h_l / d h_{l-1} at one input x (n_in,), float64, so that
        d h_L / d x = F_L ... F_1. Batch norm uses its running statistics (eval-mode
        Jacobian: the per-example map the trained net applies)."""
        h = x.to(torch.float64).unsqueeze(0)                     # (1, n_in)
        facs: list[torch.Tensor] = []
        for i, lin in enumerate(self.hidden):
            w = lin.weight.to(torch.float64)                     # (n, n_prev)
            z = h @ w.T
            if lin.bias is not None:
                z = z + lin.bias.to(torch.float64)
            jac = w
            if self.norm_kind == "batch":
                bn = self.norms[i]
                scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
                z = (z - bn.running_mean.double()) * scale + bn.bias.double()
                jac = scale.unsqueeze(1) * jac
            elif self.norm_kind == "layer":
                ln = self.norms[i]
                mu = z.mean(-1, keepdim=True)
                sd = torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + ln.eps)
                zh = (z - mu) / sd                               # (1, n)
                n = z.shape[-1]
                eye = torch.eye(n, dtype=torch.float64)
                j_ln = (eye - 1.0 / n - zh.T @ zh / n) / sd      # (n, n)
                j_ln = ln.weight.double().unsqueeze(1) * j_ln
                z = zh * ln.weight.double() + ln.bias.double()
                jac = j_ln @ jac
            d = act_prime(self.act_name, z).squeeze(0)           # (n,)
            jac = d.unsqueeze(1) * jac                           # (n, n_prev)
            a = ACTIVATIONS[self.act_name](z)
            if self.residual and i > 0:
                jac = jac + torch.eye(jac.shape[0], dtype=torch.float64)
                h = h + a
            else:
                h = a
            facs.append(jac)
        return facs


class RecurrentNet(nn.Module):
    """Stacked vanilla RNN (own cell, any activation) or GRU (torch.nn.GRUCell) unrolled
    step by step, so that dL/dh_t exists for every t; a Linear readout on the last h_T."""

    def __init__(self, cfg: RunConfig, n_in: int, n_out: int) -> None:
        super().__init__()
        self.kind = cfg.arch
        self.act_name = "tanh" if cfg.arch == "gru" else cfg.activation
        self.phi = ACTIVATIONS[self.act_name]
        H = cfg.width
        dims = [n_in] + [H] * cfg.depth
        if cfg.arch == "gru":
            self.cells = nn.ModuleList(nn.GRUCell(dims[i], H) for i in range(cfg.depth))
        else:
            self.cells = nn.ModuleList(_RNNCell(dims[i], H) for i in range(cfg.depth))
        self.out = nn.Linear(H, n_out)

    def init_(self, cfg: RunConfig, g: torch.Generator) -> None:
        H = self.out.in_features
        with torch.no_grad():
            for cell in self.cells:
                if cfg.init == "torch_default":
                    # PyTorch's default U[-1/sqrt(H), 1/sqrt(H)], drawn from *our* generator.
                    k = 1.0 / math.sqrt(H)
                    for p in cell.parameters():
                        p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * k)
                else:
                    for wname in ("weight_ih", "weight_hh"):
                        w = getattr(cell, wname)
                        for c in range(w.shape[0] // H):        # one H x n block per gate
                            init_layer(w[c * H:(c + 1) * H], None, cfg, g)
                    cell.bias_ih.zero_()
                    cell.bias_hh.zero_()
                if self.kind == "gru":
                    # GRUCell: h' = (1 - u) * n + u * h with gate order (reset, update, new).
                    # gate_bias > 0 pushes u -> 1: the "keep" mode of the additive path.
                    cell.bias_ih[H:2 * H].fill_(cfg.gate_bias)
                    cell.bias_hh[H:2 * H].zero_()
            init_layer(self.out.weight, self.out.bias, cfg, g)

    def delta_biases(self) -> list[torch.Tensor]:
        return [c.bias_ih for c in self.cells]

    def weights(self) -> list[torch.Tensor]:
        """The recurrent matrices W_hh (the ones whose powers decide the gradient's fate)."""
        return [c.weight_hh for c in self.cells] + [self.out.weight]

    def layer_names(self) -> list[str]:
        return [f"{self.kind}{i + 1}" for i in range(len(self.cells))] + ["output"]

    def forward(self, x: torch.Tensor, taps: bool = False) -> tuple[torch.Tensor, Taps | None]:
        B, T, _ = x.shape                                        # (B, T, n_in)
        t = Taps() if taps else None
        inp = x
        for li, cell in enumerate(self.cells):
            h = x.new_zeros(B, cell.hidden_size)                 # (B, H)
            hs = []
            if isinstance(cell, _RNNCell):
                xp = cell.project(inp)                           # (B, T, H), one matmul
                for s in range(T):
                    h = self.phi(xp[:, s] + h @ cell.weight_hh.T)
                    hs.append(h)
            else:
                for s in range(T):
                    h = cell(inp[:, s], h)
                    hs.append(h)
            if t is not None:
                if li == 0 and h.requires_grad:
                    for hh in hs:
                        hh.retain_grad()
                    t.h_time = hs
                seq = torch.stack(hs, 1)                         # (B, T, H)
                t.a.append(seq.reshape(B * T, -1))
                t.z.append(seq)                                  # no pre-activation tap
            inp = torch.stack(hs, 1) if li + 1 < len(self.cells) else None
        return self.out(h), t


class _RNNCell(nn.Module):
    """h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh); names match torch's RNNCell."""

    def __init__(self, n_in: int, H: int) -> None:
        super().__init__()
        self.hidden_size = H
        self.weight_ih = nn.Parameter(torch.empty(H, n_in))
        self.weight_hh = nn.Parameter(torch.empty(H, H))
        self.bias_ih = nn.Parameter(torch.zeros(H))
        self.bias_hh = nn.Parameter(torch.zeros(H))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight_ih.T + self.bias_ih + self.bias_hh   # (B, T, H)


def build(cfg: RunConfig, n_in: int, n_out: int, g: torch.Generator) -> nn.Module:
    """The network for cfg, initialised from generator g (parameters on the CPU).

    Modules are constructed on the meta device, so their own default initialisation never
    draws from the process-wide RNG that concurrent sessions share; every parameter is
    then filled from ``g``."""
    with torch.device("meta"):
        model = MLP(cfg, n_in, n_out) if cfg.arch == "mlp" else RecurrentNet(cfg, n_in, n_out)
    model = model.to_empty(device="cpu")
    model.init_(cfg, g)
    return model
