"""MFVAN model: Table 3 variants, shapes, class-token masking, attention maps, and a tiny-batch overfit."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mfvan_core.config import TABLE3_LABELS, VARIANTS, MFVANConfig, variant_config
from mfvan_core.model import MFVAN
from mfvan_core.stages import make_optimizer, predict_proba, train_step

SMALL = {"img_size": 32, "patch_grid": 4, "num_classes": 3}  # scale sides 32/16/8 px -> patches 8/4/2 px


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread avoids thread-sync overhead on a shared CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(b: int, size: int, seed: int) -> torch.Tensor:
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ---- config ----------------------------------------------------------------------------------------------

def test_table3_variants():
    assert list(VARIANTS) == ["global", "global+ri", "global+s1", "global+s1+ri", "global+s12", "global+s12+ri",
                              "global+s123", "global+s123+ri"]
    assert TABLE3_LABELS["global+s12+ri"] == "Global+scale1,2 + RI"
    assert variant_config("full") == VARIANTS["global+s123+ri"] == MFVANConfig()
    assert variant_config("global+s1", num_classes=5).scales == (1,)
    assert variant_config("global+ri").use_ri and not variant_config("global").use_ri
    with pytest.raises(ValueError, match="unknown MFVAN variant"):
        variant_config("global+s2")
    with pytest.raises(ValueError, match="fixes"):
        variant_config("global", scales=(1,))
    with pytest.raises(ValueError, match="unknown MFVANConfig field"):
        variant_config("full", heads=4)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="img_size"):
        MFVANConfig(img_size=100)
    with pytest.raises(ValueError, match="focal_alpha"):
        MFVANConfig(num_classes=3, focal_alpha=(1.0, 1.0))
    with pytest.raises(ValueError, match="scales"):
        MFVANConfig(scales=(2, 1))
    with pytest.raises(ValueError, match="mask_loss"):
        MFVANConfig(mask_loss="inverted")
    assert MFVANConfig().mask_threshold == pytest.approx(1 / 64)
    assert MFVANConfig(theta=0.0).mask_threshold == 0.0


# ---- shapes ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(VARIANTS))
def test_output_shapes_every_variant(name):
    cfg = variant_config(name, **SMALL)
    model = MFVAN(cfg).train()
    apex, onset = _images(2, 32, 0), _images(2, 32, 1)
    out = model(apex, onset if cfg.use_ri else None, return_attention=True)
    assert out["logits"].shape == (2, 3)
    assert set(out["scale_logits"]) == set(cfg.scales)
    for i in cfg.scales:
        assert out["scale_logits"][i].shape == (2, 3)
        assert out["patch_weights"][i].shape == (2, 16)
        assert out["attention"][i].shape == (2, 4, 4)
        assert out["keep_grid"][i].dtype == torch.bool
        torch.testing.assert_close(out["attention"][i].sum((1, 2)), torch.ones(2))
    if cfg.use_ri:
        assert out["onset_student"].shape == out["onset_teacher"].shape == (2, 3, 32, 32)
        assert model(apex)["onset_teacher"] is None  # inference needs no teacher
    else:
        assert "onset_student" not in out
    terms = model.loss(out, {"label": torch.tensor([0, 2]), "onset": onset})
    expected = {"all", "class_global"} | {f"class_scale{i}" for i in cfg.scales}
    expected |= {"mask"} if cfg.scales else set()
    expected |= {"remove", "teacher", "student", "student_onset", "student_soft"} if cfg.use_ri else set()
    assert set(terms) == expected
    terms["all"].backward()
    assert all(torch.isfinite(t) for t in terms.values())


@pytest.mark.parametrize("name", ["global", "full"])
def test_default_size_forward(name):
    model = MFVAN(variant_config(name)).eval()
    out = model(_images(2, 128, 0), return_attention=True)
    assert out["logits"].shape == (2, 3)
    for i in model.config.scales:
        assert out["attention"][i].shape == (2, 8, 8)


def test_bad_inputs_are_named():
    model = MFVAN(variant_config("full", **SMALL))
    with pytest.raises(ValueError, match="apex"):
        model(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="onset"):
        model(_images(2, 32, 0), torch.rand(3, 3, 32, 32))
    out = model(_images(2, 32, 0))
    with pytest.raises(ValueError, match="onset"):
        model.loss(out, {"label": torch.tensor([0, 1]), "onset": _images(2, 32, 1)})
    with pytest.raises(ValueError, match="use_ri=False"):
        MFVAN(variant_config("global+s1", **SMALL)).pretrain_loss(_images(2, 32, 0))


def test_init_is_seeded():
    a, b = MFVAN(variant_config("full", **SMALL)), MFVAN(variant_config("full", **SMALL))
    c = MFVAN(variant_config("full", seed=1, **SMALL))
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


# ---- class-token masking ---------------------------------------------------------------------------------

def _patch_region(j: int, grid: int, side: int) -> tuple[slice, slice]:
    p = side // grid
    r, c = divmod(j, grid)
    return slice(r * p, (r + 1) * p), slice(c * p, (c + 1) * p)


def _perturbing(model: MFVAN, scale: int, patches: dict[int, list[int]], amount: float):
    """Forward pre-hook adding noise to the given patches (per sample) of one scale's input map."""
    grid = model.config.patch_grid

    def hook(_module, args):
        feat, *rest = args
        feat = feat.clone()
        g = torch.Generator().manual_seed(scale)
        for b, js in patches.items():
            for j in js:
                rows, cols = _patch_region(j, grid, feat.shape[-1])
                feat[b, :, rows, cols] += amount * torch.randn(feat[b, :, rows, cols].shape, generator=g)
        return (feat, *rest)

    return model.encoders[str(scale)].register_forward_pre_hook(hook)


def _split(keep: torch.Tensor) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    masked = {b: torch.nonzero(~keep[b]).flatten().tolist() for b in range(keep.shape[0])}
    kept = {b: torch.nonzero(keep[b]).flatten().tolist() for b in range(keep.shape[0])}
    return masked, kept


@pytest.fixture(scope="module")
def full_small():
    model = MFVAN(variant_config("full", **SMALL)).eval()
    apex = _images(2, 32, 5)
    with torch.no_grad():
        ref = model(apex)
    return model, apex, ref


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_masked_patches_cannot_change_the_prediction(full_small, scale):
    model, apex, ref = full_small
    keep = ref["keep_masks"][scale]
    masked, kept = _split(keep)
    assert all(masked.values()), "theta = 1/k should mask some patches of every sample"
    handle = _perturbing(model, scale, masked, amount=10.0)
    try:
        with torch.no_grad():
            out = model(apex, keep_masks=ref["keep_masks"])
    finally:
        handle.remove()
    torch.testing.assert_close(out["logits"], ref["logits"], rtol=0, atol=1e-6)
    torch.testing.assert_close(out["scale_logits"][scale], ref["scale_logits"][scale], rtol=0, atol=1e-6)
    # the same perturbation on kept patches does change it (the hook reaches the tokens)
    handle = _perturbing(model, scale, kept, amount=10.0)
    try:
        with torch.no_grad():
            out = model(apex, keep_masks=ref["keep_masks"])
    finally:
        handle.remove()
    assert (out["logits"] - ref["logits"]).abs().max() > 1e-4


@pytest.mark.parametrize("scale", [1, 2, 3])
def test_small_perturbation_of_masked_patches_without_override(full_small, scale):
    """Without forcing the mask: a small change of masked patches keeps the mask and the prediction."""
    model, apex, ref = full_small
    masked, _ = _split(ref["keep_masks"][scale])
    handle = _perturbing(model, scale, masked, amount=1e-3)
    try:
        with torch.no_grad():
            out = model(apex)
    finally:
        handle.remove()
    for i in (1, 2, 3):
        assert torch.equal(out["keep_masks"][i], ref["keep_masks"][i])
    assert not torch.equal(out["patch_weights"][scale], ref["patch_weights"][scale])  # pass 1 saw the change
    torch.testing.assert_close(out["logits"], ref["logits"], rtol=0, atol=1e-6)


def test_theta_zero_keeps_every_patch():
    model = MFVAN(variant_config("full", theta=0.0, **SMALL)).eval()
    apex = _images(1, 32, 7)
    with torch.no_grad():
        ref = model(apex)
    for scale in (1, 2, 3):
        assert bool(ref["keep_masks"][scale].all())
        for j in range(16):
            handle = _perturbing(model, scale, {0: [j]}, amount=1.0)
            try:
                with torch.no_grad():
                    out = model(apex)
            finally:
                handle.remove()
            assert (out["logits"] - ref["logits"]).abs().max() > 1e-6, (scale, j)


def test_attention_maps_follow_the_patch_grid(full_small):
    model, apex, _ = full_small
    with torch.no_grad():
        out = model(apex, return_attention=True)
    theta = model.config.mask_threshold
    for i in (1, 2, 3):
        att = out["attention"][i]
        assert att.shape == (2, 4, 4) and bool((att >= 0).all())
        torch.testing.assert_close(att.flatten(1), out["patch_weights"][i])
        assert torch.equal(out["keep_grid"][i], att >= theta)


def test_mask_attention_mean_variant_runs():
    cfg = dataclasses.replace(variant_config("global+s1", **SMALL), mask_attention="mean", depth=3)
    out = MFVAN(cfg).eval()(_images(2, 32, 0))
    torch.testing.assert_close(out["patch_weights"][1].sum(-1), torch.ones(2))


# ---- training --------------------------------------------------------------------------------------------

def test_full_model_overfits_a_tiny_batch():
    torch.manual_seed(0)
    cfg = variant_config("full", **SMALL)
    model = MFVAN(cfg)
    g = torch.Generator().manual_seed(11)
    apex, onset = torch.rand(8, 3, 32, 32, generator=g), torch.rand(8, 3, 32, 32, generator=g)
    labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    batch = {"apex": apex, "onset": onset, "label": labels}
    opt = make_optimizer(model.parameters(), cfg)
    first = train_step(model, batch, opt)
    for _ in range(99):
        last = train_step(model, batch, opt)
    assert last["class_global"] < 0.1 * first["class_global"]
    assert last["remove"] < first["remove"]
    pred = predict_proba(model, apex).argmax(-1)
    assert torch.equal(pred, labels)
