#!/usr/bin/env python3
"""Cross-checks flowplay against the Quick Reference's own PyTorch code.

Optional developer tool (needs `torch` and `safetensors`; CI does not run it):

  check WEIGHTS TRAJECTORIES_CSV
      Loads flowplay's weights.safetensors into the Quick Reference's `VectorFieldMLP` with
      `load_state_dict(strict=True)`, integrates QR §5's `euler_sampler` from the starting points
      recorded in a `flowplay sample --trajectories` CSV, and compares the end points.

  bench [--hidden H] [--batch B] [--threads N] [--seconds S]
      Steps per second of QR §4.4's training loop (AdamW, clip 1, EMA) on this machine.

The model code below is the Quick Reference's §4.2, unchanged except for an optional depth.
"""

import argparse
import csv
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


class SinusoidalTimeEmbed(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half)
        args = t[:, None] * freqs[None, :]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class VectorFieldMLP(nn.Module):
    def __init__(self, dim: int, hidden: int = 256, t_dim: int = 128, depth: int = 2):
        super().__init__()
        self.t_embed = nn.Sequential(
            SinusoidalTimeEmbed(t_dim),
            nn.Linear(t_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
        )
        layers = [nn.Linear(dim + hidden, hidden), nn.SiLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.SiLU()]
        layers.append(nn.Linear(hidden, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.t_embed(t)], dim=-1))


@torch.no_grad()
def euler_sampler(model, x0, steps=50, t_start=0.0, t_end=1.0):
    x = x0.clone()
    ts = torch.linspace(t_start, t_end, steps + 1, device=x0.device)
    for i in range(steps):
        t = ts[i].expand(x.shape[0])
        dt = ts[i + 1] - ts[i]
        x = x + dt * model(t, x)
    return x


def check(weights: str, trajectories: str) -> int:
    with safe_open(weights, framework="pt") as f:
        spec = json.loads(f.metadata()["flowplay"])
    mlp = spec["mlp"]
    if mlp["num_classes"] or spec["path"]["kind"] != "rectified-flow" or mlp["t_scale"] != 1.0:
        print("this check covers the Quick Reference's own setting: unconditional rectified flow, t unscaled")
        return 2
    state = load_file(weights)
    model = VectorFieldMLP(2, hidden=mlp["hidden"], t_dim=mlp["t_dim"], depth=mlp["depth"])
    model.load_state_dict(state, strict=True)
    model.eval()
    starts, ends, steps = {}, {}, 0
    with open(trajectories) as f:
        for row in csv.DictReader(f):
            i, s = int(row["particle"]), int(row["step"])
            steps = max(steps, s)
            point = (float(row["x"]), float(row["y"]))
            if s == 0:
                starts[i] = point
            ends[i] = point
    order = sorted(starts)
    x0 = torch.tensor([starts[i] for i in order], dtype=torch.float32)
    ours = torch.tensor([ends[i] for i in order], dtype=torch.float32)
    theirs = euler_sampler(model, x0, steps=steps)
    diff = (theirs - ours).abs().max().item()
    print(f"load_state_dict(strict=True): ok ({len(state)} tensors)")
    print(f"QR euler_sampler, {steps} steps, {len(order)} particles: max |PyTorch − flowplay| = {diff:.2e}")
    return 0 if diff < 1e-3 else 1


def bench(hidden: int, batch: int, threads: int, seconds: float) -> int:
    torch.set_num_threads(threads)
    from sklearn.datasets import make_moons

    def sample_moons(n):
        x, _ = make_moons(n_samples=n, noise=0.05)
        return torch.tensor(x, dtype=torch.float32) * 2.0

    model = VectorFieldMLP(2, hidden=hidden, t_dim=128)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.0)
    ema = VectorFieldMLP(2, hidden=hidden, t_dim=128)
    ema.load_state_dict(model.state_dict())

    def step():
        x1 = sample_moons(batch)
        x0 = torch.randn_like(x1)
        t = torch.sigmoid(torch.randn(batch))
        xt = (1 - t[:, None]) * x0 + t[:, None] * x1
        loss = F.mse_loss(model(t, xt), x1 - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for e, p in zip(ema.parameters(), model.parameters()):
                e.mul_(0.9999).add_(p, alpha=1e-4)

    for _ in range(5):
        step()
    start, n = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        step()
        n += 1
    rate = n / (time.perf_counter() - start)
    print(f"PyTorch {torch.__version__}, {threads} threads: hidden {hidden}, batch {batch}: {rate:.1f} steps/s")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check")
    c.add_argument("weights")
    c.add_argument("trajectories")
    b = sub.add_parser("bench")
    b.add_argument("--hidden", type=int, default=128)
    b.add_argument("--batch", type=int, default=512)
    b.add_argument("--threads", type=int, default=2)
    b.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    if args.command == "check":
        return check(args.weights, args.trajectories)
    return bench(args.hidden, args.batch, args.threads, args.seconds)


if __name__ == "__main__":
    sys.exit(main())
