"""Removing identity (section 3.1): the stages train the right networks and the student learns apex -> onset."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mfvan_core.config import variant_config
from mfvan_core.identity import ResidualBlock, StudentNetwork, TeacherAutoencoder
from mfvan_core.model import MFVAN
from mfvan_core.stages import make_optimizer, pretrain_teacher_step, ri_step

SIZE = 32


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread avoids thread-sync overhead on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def synthetic_clips(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(onset, apex): a smooth random "face" (Gaussian blobs, one identity per clip) and the same face
    under a small local warp (a Gaussian displacement bump of ~2 px around a random point) as the apex."""
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, SIZE), torch.linspace(-1, 1, SIZE), indexing="ij")
    onset = torch.zeros(n, 3, SIZE, SIZE)
    for _ in range(6):
        c = torch.rand(n, 2, generator=g) * 1.6 - 0.8
        width = 0.15 + 0.35 * torch.rand(n, generator=g)
        colour = torch.rand(n, 3, generator=g)
        blob = torch.exp(-((xs - c[:, :1, None]) ** 2 + (ys - c[:, 1:, None]) ** 2) / (2 * width[:, None, None] ** 2))
        onset += colour[:, :, None, None] * blob[:, None]
    onset = onset / onset.amax(dim=(1, 2, 3), keepdim=True)
    centre = torch.rand(n, 2, generator=g) * 1.0 - 0.5
    shift = (torch.rand(n, 2, generator=g) - 0.5) * (4.0 / SIZE) * 2  # up to ~2 px
    bump = torch.exp(-((xs - centre[:, :1, None]) ** 2 + (ys - centre[:, 1:, None]) ** 2) / (2 * 0.25**2))
    base = torch.stack([xs, ys], dim=-1).expand(n, SIZE, SIZE, 2)
    grid = base + bump[..., None] * shift[:, None, None, :]
    apex = F.grid_sample(onset, grid, align_corners=True, padding_mode="border")
    return onset, apex


def test_synthetic_pairs_differ_locally():
    onset, apex = synthetic_clips(4, 0)
    diff = (apex - onset).abs()
    assert float(diff.max()) > 0.02 and float(diff.mean()) < 0.05


def test_teacher_is_deeper_than_student():
    def count(net, kinds):
        return sum(isinstance(m, kinds) for m in net.modules())

    teacher, student = TeacherAutoencoder(), StudentNetwork()
    assert count(teacher, ResidualBlock) == 2 and count(student, ResidualBlock) == 0
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    assert count(teacher, convs) == 10 and count(student, convs) == 4
    assert sum(p.numel() for p in teacher.parameters()) > 3 * sum(p.numel() for p in student.parameters())


def test_pretrain_step_updates_only_the_teacher():
    model = MFVAN(variant_config("full", img_size=SIZE, patch_grid=4))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    onset, apex = synthetic_clips(4, 1)
    opt = make_optimizer(model.ri.teacher.parameters(), model.config)
    pretrain_teacher_step(model, torch.cat([onset, apex]), opt)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("ri.teacher.") for k in changed)


def test_student_learns_apex_to_onset():
    torch.manual_seed(0)
    cfg = variant_config("full", img_size=SIZE, patch_grid=4, lr=3e-3)
    model = MFVAN(cfg)
    onset, apex = synthetic_clips(16, 2)

    def student_mse() -> float:
        model.eval()
        with torch.no_grad():
            return float(F.mse_loss(model.ri.student(apex), onset))

    initial = student_mse()
    teacher_opt = make_optimizer(model.ri.teacher.parameters(), cfg)
    pre = [pretrain_teacher_step(model, torch.cat([onset, apex]), teacher_opt)["pre"] for _ in range(30)]
    assert pre[-1] < 0.5 * pre[0]  # stage 1: self-supervised reconstruction improves
    ri_opt = make_optimizer(model.ri.parameters(), cfg)
    terms = [ri_step(model, apex, onset, ri_opt) for _ in range(40)]
    assert all(math.isfinite(v) for v in terms[-1].values())
    assert terms[-1]["teacher"] < terms[0]["teacher"]
    assert student_mse() < 0.5 * initial


def test_residual_student_starts_at_onset_equals_apex_and_learns_from_there():
    import torch

    from mfvan_core.identity import StudentNetwork

    torch.manual_seed(0)
    apex = torch.rand(4, 3, 32, 32)
    plain, residual = StudentNetwork(residual=False), StudentNetwork(residual=True)
    assert torch.equal(residual(apex), apex)                       # the trivial answer, exactly
    assert (plain(apex) - apex).abs().mean() > 0.05                 # the plain student starts far from it
    onset = apex * 0.9
    opt = torch.optim.Adam(residual.parameters(), 1e-2)
    start = torch.mean((residual(apex) - onset) ** 2).item()
    for _ in range(30):
        loss = torch.mean((residual(apex) - onset) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * start
