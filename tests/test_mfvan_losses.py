"""Loss terms of MFVAN (eq. 1-4, 9-11) against hand-computed values."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from mfvan_core.config import variant_config
from mfvan_core.identity import pretrain_loss, remove_loss, student_loss, teacher_loss
from mfvan_core.losses import focal_loss, inverse_frequency_alpha, mask_loss, mfvan_loss

# ---- eq. 1-4 -----------------------------------------------------------------------------------------------
# One image (N=1) of M=4 values; every MSE is sum of squared differences / (N*M).
TARGET = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])  # (1, 1, 2, 2)
ONES = torch.ones(1, 1, 2, 2)
TEACHER_OUT = torch.tensor([[[[1.0, 2.0], [3.0, 2.0]]]])


def test_pretrain_loss_eq1():
    # x - x' = [0, 1, 2, 3] -> (0 + 1 + 4 + 9) / 4 = 3.5
    assert pretrain_loss(ONES, TARGET).item() == pytest.approx(3.5)


def test_teacher_loss_eq2():
    # onset - teacher = [0, 0, 0, 2] -> 4 / 4 = 1.0
    assert teacher_loss(TEACHER_OUT, TARGET).item() == pytest.approx(1.0)


def test_student_loss_eq3_and_soft_target():
    # onset term: (0 + 1 + 4 + 9) / 4 = 3.5; soft term: student - teacher = [0, -1, -2, -1] -> 6 / 4 = 1.5
    terms = student_loss(ONES, TARGET, TEACHER_OUT, soft_weight=0.5)
    assert terms["student_onset"].item() == pytest.approx(3.5)
    assert terms["student_soft"].item() == pytest.approx(1.5)
    assert terms["student"].item() == pytest.approx(3.5 + 0.5 * 1.5)
    # soft_weight = 0 is eq. 3 as printed
    assert student_loss(ONES, TARGET, TEACHER_OUT, soft_weight=0.0)["student"].item() == pytest.approx(3.5)


def test_remove_loss_eq4_sums_teacher_and_student():
    terms = remove_loss(ONES, TEACHER_OUT, TARGET, soft_weight=1.0)
    # L_teacher 1.0 + L_student (3.5 + 1.0 * 1.5) = 6.0
    assert terms["teacher"].item() == pytest.approx(1.0)
    assert terms["remove"].item() == pytest.approx(6.0)


def test_soft_target_does_not_train_the_teacher():
    teacher_out = TEACHER_OUT.clone().requires_grad_(True)
    student_out = ONES.clone().requires_grad_(True)
    student_loss(student_out, TARGET, teacher_out, soft_weight=1.0)["student"].backward()
    assert teacher_out.grad is None and student_out.grad is not None


def test_mse_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="onset_teacher"):
        teacher_loss(torch.ones(1, 1, 2, 3), TARGET)


# ---- eq. 10: focal loss -------------------------------------------------------------------------------------

def test_focal_with_r0_alpha1_is_cross_entropy():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(16, 5, generator=g) * 3
    target = torch.randint(0, 5, (16,), generator=g)
    ce = F.cross_entropy(logits, target)
    assert focal_loss(logits, target, alpha=None, gamma=0.0).item() == pytest.approx(ce.item(), abs=1e-6)
    assert focal_loss(logits, target, alpha=[1.0] * 5, gamma=0.0).item() == pytest.approx(ce.item(), abs=1e-6)


def test_focal_hand_computed_r2_with_alpha():
    # sample 1: logits ln[1, 2, 1] -> p = [0.25, 0.5, 0.25], t = 1: 0.5 * (1 - 0.5)^2 * -ln 0.5
    #         = 0.5 * 0.25 * 0.6931472 = 0.0866434
    # sample 2: logits [0, 0, 0] -> p = 1/3, t = 0: 0.25 * (2/3)^2 * ln 3 = 0.25 * 0.4444444 * 1.0986123
    #         = 0.1220680
    # mean = (0.0866434 + 0.1220680) / 2 = 0.1043557
    logits = torch.tensor([[0.0, math.log(2.0), 0.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([1, 0])
    loss = focal_loss(logits, target, alpha=[0.25, 0.5, 0.25], gamma=2.0)
    assert loss.item() == pytest.approx(0.1043557, abs=1e-6)


def test_focal_down_weights_easy_examples():
    logits = torch.tensor([[4.0, 0.0, 0.0]])
    target = torch.tensor([0])
    assert focal_loss(logits, target, gamma=2.0) < 0.01 * focal_loss(logits, target, gamma=0.0)


def test_focal_bad_input_is_named():
    with pytest.raises(ValueError, match="target labels"):
        focal_loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="alpha"):
        focal_loss(torch.zeros(2, 3), torch.tensor([0, 1]), alpha=[1.0, 1.0])


def test_inverse_frequency_alpha_hand_computed():
    # n = 4, C = 3, counts [3, 1, 0]: alpha_0 = 4 / (3 * 3), alpha_1 = 4 / (3 * 1), absent class -> 1.0
    assert inverse_frequency_alpha([0, 0, 0, 1], 3) == pytest.approx((4 / 9, 4 / 3, 1.0))
    with pytest.raises(ValueError, match="labels"):
        inverse_frequency_alpha([0, 5], 3)


# ---- eq. 11: mask loss --------------------------------------------------------------------------------------
WEIGHTS = torch.tensor([[0.5, 0.3, 0.15, 0.05]])  # f_c over k = 4 patches, theta = 0.25


def test_mask_loss_as_printed_sums_kept_weights():
    # kept (>= 0.25): 0.5 + 0.3 = 0.8
    assert mask_loss(WEIGHTS, 0.25, "as_printed").item() == pytest.approx(0.8)


def test_mask_loss_alternatives():
    # masked mass: 0.15 + 0.05 = 0.2
    assert mask_loss(WEIGHTS, 0.25, "masked_mass").item() == pytest.approx(0.2)
    # entropy / ln 4: (0.5 ln 2 + 0.3 ln(1/0.3) + 0.15 ln(1/0.15) + 0.05 ln 20) / ln 4
    #   = (0.3465736 + 0.3611918 + 0.2845680 + 0.1497866) / 1.3862944 = 1.1421200 / 1.3862944 = 0.8238655
    assert mask_loss(WEIGHTS, 0.25, "entropy").item() == pytest.approx(0.8238655, abs=1e-6)
    assert mask_loss(WEIGHTS, 0.25, "none").item() == 0.0
    with pytest.raises(ValueError, match="unknown mode"):
        mask_loss(WEIGHTS, 0.25, "sparse")


def test_mask_loss_as_printed_pushes_kept_weights_down():
    w = WEIGHTS.clone().requires_grad_(True)
    mask_loss(w, 0.25, "as_printed").backward()
    assert w.grad.tolist() == [[1.0, 1.0, 0.0, 0.0]]
    w.grad = None
    mask_loss(w, 0.25, "masked_mass").backward()
    assert w.grad.tolist() == [[0.0, 0.0, 1.0, 1.0]]


# ---- eq. 9: L_all ------------------------------------------------------------------------------------------

def test_l_all_is_the_sum_of_its_terms():
    cfg = variant_config("full", img_size=32, patch_grid=4, num_classes=3, focal_gamma=0.0,
                         soft_target_weight=0.0)
    labels = torch.tensor([0, 2])
    uniform = torch.zeros(2, 3)  # CE of uniform logits = ln 3
    weights = torch.tensor([[0.4, 0.3, 0.2, 0.1] + [0.0] * 12] * 2)  # theta = 1/16: kept 0.4+0.3+0.2+0.1 = 1
    outputs = {
        "logits": uniform, "scale_logits": {i: uniform for i in (1, 2, 3)},
        "patch_weights": {i: weights for i in (1, 2, 3)},
        "onset_student": torch.ones(2, 3, 32, 32), "onset_teacher": torch.zeros(2, 3, 32, 32),
    }
    batch = {"label": labels, "onset": torch.zeros(2, 3, 32, 32)}
    terms = mfvan_loss(outputs, batch, cfg)
    ln3 = math.log(3.0)
    assert terms["class_global"].item() == pytest.approx(ln3)
    assert terms["mask"].item() == pytest.approx(3.0)  # 1.0 per scale, 3 scales
    assert terms["teacher"].item() == pytest.approx(0.0)
    assert terms["student"].item() == pytest.approx(1.0)  # (1 - 0)^2
    # L_all = L_remove (1) + global (ln 3) + 3 scales (3 ln 3) + L_mask (3)
    assert terms["all"].item() == pytest.approx(1.0 + 4 * ln3 + 3.0, abs=1e-5)

    # the alternative reading: attention on masked patches (all zero here) is penalised instead
    masked_mass = mfvan_loss(outputs, batch, dataclasses.replace(cfg, mask_loss="masked_mass"))
    assert masked_mass["mask"].item() == pytest.approx(0.0)
    assert masked_mass["all"].item() == pytest.approx(1.0 + 4 * ln3, abs=1e-5)

    del batch["onset"]
    with pytest.raises(ValueError, match="onset"):
        mfvan_loss(outputs, batch, cfg)
