"""The fused reluadd training kernels compute the reference module's outputs and gradients."""

from __future__ import annotations

import pytest
import torch

from rnnbench.cells import make_cell
from rnnbench.tasks.fused import fused_reluadd


@pytest.mark.parametrize(("seq_len", "batch", "hidden", "scale"), [(20, 5, 16, 3.0), (7, 1, 9, 8.0),
                                                                   (30, 8, 32, 1.5)])
def test_fused_reluadd_gradients_match_autograd_on_the_reference(seq_len, batch, hidden, scale):
    torch.manual_seed(seq_len)
    cell = make_cell("reluadd", 4, hidden, seed=3)
    with torch.no_grad():  # wider weights reach every branch of the ReLUs and clips
        for p in cell.parameters():
            p.mul_(scale)
    x = torch.randn(seq_len, batch, 4, requires_grad=True)
    weights_out = torch.randn(seq_len, batch, hidden)  # a loss that reads every output

    def grads(outputs):
        (outputs * weights_out).sum().backward()
        got = [x.grad.clone()] + [p.grad.clone() for p in cell.parameters()]
        x.grad = None
        cell.zero_grad()
        return got

    reference, _ = cell(x)
    expected = grads(reference)
    fused = fused_reluadd(x, cell)
    torch.testing.assert_close(fused, reference.detach(), atol=1e-5, rtol=0)
    # within 1e-5, relative to the largest gradient where gradients grow past 1 (float32 sums)
    for got, want, name in zip(grads(fused), expected, ["x", "weight_ih", "weight_hh", "bias_ih",
                                                        "bias_hh"], strict=True):
        assert (got - want).abs().max() <= 1e-5 * max(1.0, float(want.abs().max())), name
    # the test means something: some units saturate, some pass
    assert 0 < (reference.abs() == 1).float().mean() < 0.9


@pytest.mark.parametrize("cell", ["gru", "lstm", "reluadd"])
def test_task_model_trains_through_kernels_with_the_reference_gradients(cell):
    from rnnbench.tasks.model import TaskModel

    model = TaskModel(cell, 2, 12, 1, seed=4)
    x = torch.randn(15, 3, 2)
    with torch.no_grad():
        model.cell.bias_ih[12:24] += 1.0  # a non-default state, as LSTM's forget bias gives

    def grads(outputs):
        outputs.sum().backward()
        got = [p.grad.clone() for p in model.cell.parameters()]
        model.zero_grad()
        return got

    fast = model.recurrent_outputs(x)
    reference = model.cell(x)[0]
    torch.testing.assert_close(fast, reference, atol=1e-5, rtol=0)
    for got, want in zip(grads(fast), grads(reference), strict=True):
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
