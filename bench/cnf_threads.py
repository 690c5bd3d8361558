"""Seconds per training step of the CNF lab (dgm.cnf), at 1 and at 2 CPU threads.

One step is the lab's: a batch of 512 points, the exact trace, torchdiffeq's RK4 with 6 steps
backwards from t1 = 1, the loss's gradient through the solver and one Adam update. The arms are
interleaved in one process (1, 2, 1, 2, ...) and the median of each is printed, so that a change
in the machine's load affects both alike. The lab uses what this favours.

    python bench/cnf_threads.py [--repeats R] [--steps S]
"""

from __future__ import annotations

import torch
from reference import thread_bench  # bench/reference.py

from dgm.cnf import CNFConfig, TimeMLP, nll_loss
from dgm.toy_densities import make_density


def cnf_step(hutchinson: bool = False):
    config = CNFConfig()
    torch.manual_seed(0)
    field = TimeMLP(2, config.hidden, config.layers, config.activation)
    optimizer = torch.optim.Adam(field.parameters(), lr=config.lr)
    x = make_density("checkerboard").sample(config.batch_size, torch.Generator().manual_seed(0))
    x = x.float()  # (batch, 2)
    v = (2 * torch.randint(0, 2, x.shape) - 1).float() if hutchinson else None

    def step():
        loss = nll_loss(field, x, config.t1, config.solver, v)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def main() -> None:
    thread_bench(__doc__.split("\n")[0], {
        "CNF step, exact trace": lambda: cnf_step(False),
        "CNF step, Hutchinson": lambda: cnf_step(True),
    })

if __name__ == "__main__":
    main()
