"""HTNet (baselines.htnet, registered as htnet) and its landmark-centred flow mosaic (data.patch_views)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from baselines.htnet import ChannelLayerNorm, HTNet, HTNetConfig, aggregate, from_blocks, to_blocks
from benchmarks.data import views as V
from benchmarks.data.patch_views import FALLBACK_LANDMARKS, landmark_patches, patch_centres
from benchmarks.data.views import ViewDef, ViewSpec, ViewUnavailable, get_view, view_array
from benchmarks.evaluate import resolve_views, run_loso
from benchmarks.registry import get_method
from benchmarks.trainer import TrainConfig, train_fold
from benchmarks.units import code_modules
from tests.conftest import synthetic_subset

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(dim=8, heads=2, block_repeats=(1, 1, 1))  # the reference's layout at a test's size


def _n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ------------------------------------------------------------------------------------------------ model
def _hand_count(dim=256, heads=3, repeats=(2, 2, 10), classes=3, patch_dim=3 * 7 * 7) -> int:
    """Parameters of Model.py's HTNet, counted from its layer list (reference commit 91cf4bd)."""
    total = patch_dim * dim + dim  # 1x1 conv patch embedding
    for k, depth in enumerate(repeats):
        d, h = dim * 2 ** k, heads * 2 ** k
        inner = (d // h) * h  # head width dim // heads
        block = 2 * 2 * d + d * 3 * inner + (inner * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
        total += 1 + depth * block  # one position scalar per block token (1 token per block here)
        if k < len(repeats) - 1:
            total += 9 * d * 2 * d + 2 * d + 2 * 2 * d  # aggregate: conv 3x3, LayerNorm
    last = dim * 2 ** (len(repeats) - 1)
    return total + 2 * last + last * classes + classes


def test_parameter_count_and_reference_layout():
    with torch.device("meta"):
        model = HTNet.from_config(HTNetConfig())
    assert _hand_count() == 139_582_982  # also what the reference Model.py gives (see baselines/htnet.py)
    assert _n_params(model) == 139_582_982
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    expected = {  # names and shapes of Model.py's state dict (a sample; every key is tested by the count)
        "to_patch_embedding.1.weight": (256, 147, 1, 1), "layers.0.0.pos_emb": (1,),
        "layers.0.0.layers.1.0.norm.g": (1, 256, 1, 1),
        "layers.0.0.layers.0.0.fn.to_qkv.weight": (765, 256, 1, 1),
        "layers.0.0.layers.0.0.fn.to_out.0.weight": (256, 255, 1, 1),
        "layers.0.0.layers.0.1.fn.net.3.weight": (256, 1024, 1, 1),
        "layers.0.1.0.weight": (512, 256, 3, 3), "layers.0.1.1.b": (1, 512, 1, 1),
        "layers.1.0.layers.1.0.fn.to_qkv.weight": (1530, 512, 1, 1),
        "layers.2.0.layers.9.1.fn.net.0.weight": (4096, 1024, 1, 1),
        "mlp_head.0.g": (1, 1024, 1, 1), "mlp_head.2.weight": (3, 1024),
    }
    assert {k: shapes.get(k) for k in expected} == expected
    assert not any(k.startswith("layers.2.1") for k in shapes)  # no aggregation after the last hierarchy
    assert sum(k.endswith("to_qkv.weight") for k in shapes) == 14  # blocks (2, 2, 10)


def test_output_shape_and_input_check():
    torch.manual_seed(0)
    model = HTNet.from_config(HTNetConfig(num_classes=5, **TINY)).eval()
    assert model(torch.rand(4, 3, 28, 28)).shape == (4, 5)
    with pytest.raises(ValueError, match=r"\(B, 3, 28, 28\)"):
        model(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="block_repeats"):
        HTNetConfig(block_repeats=(2, 2))
    with pytest.raises(dataclasses.FrozenInstanceError):
        HTNetConfig().lr = 1.0  # type: ignore[misc]


def test_published_training_settings():
    cfg = HTNetConfig()
    assert (cfg.lr, cfg.batch_size, cfg.epochs, cfg.optimizer, cfg.weight_decay) == (5e-5, 256, 800, "adam", 0.0)
    assert (cfg.patch_size, cfg.dim, cfg.heads, cfg.num_hierarchies, cfg.block_repeats) == (7, 256, 3, 3, (2, 2, 10))
    assert (cfg.input_scale, cfg.bgr, cfg.batch_order, cfg.select_epoch) == (255.0, True, "by_label", "oracle")


def test_channel_layer_norm_known_answer():
    ln = ChannelLayerNorm(2)
    x = torch.tensor([1.0, 3.0]).reshape(1, 2, 1, 1)  # mean 2, biased var 1
    torch.testing.assert_close(ln(x).flatten(), torch.tensor([-1.0, 1.0]) / np.sqrt(1 + 1e-5))


def test_aggregation_layer_known_answer():
    agg = aggregate(2, 2)
    with torch.no_grad():
        conv = agg[0]
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 0, 1, 1] = 1.0  # out 0 = in 0 (kernel centre)
        conv.weight[1, 1] = 1.0  # out 1 = 3x3 sum of in 1 (zero padding)
        agg[1].g.fill_(2.0)
        agg[1].b.fill_(0.5)
    a = torch.arange(16.0).reshape(4, 4) - 8
    x = torch.stack([a, torch.ones(4, 4)])[None]
    # out 1 = number of in-image neighbours: 4 at corners, 6 on edges, 9 inside
    n = torch.tensor([[4, 6, 6, 4], [6, 9, 9, 6], [6, 9, 9, 6], [4, 6, 6, 4]], dtype=torch.float32)
    # LayerNorm of two channels (p, q): (p - q) / 2 / sqrt((p - q)^2 / 4 + eps) = sign(p - q) (|p - q| >> eps)
    s = torch.sign(a - n)
    ln = torch.stack([s, -s]) * 2.0 + 0.5
    # max-pool 3, stride 2, padding 1 on 4x4: output (i, j) covers rows/cols {2i-1..2i+1} within the map
    def window(i: int) -> slice:
        return slice(max(0, 2 * i - 1), 2 * i + 2)

    expected = torch.tensor([[[ln[c, window(i), window(j)].max() for j in range(2)] for i in range(2)]
                             for c in range(2)])
    out = agg(x)[0]
    assert out.shape == (2, 2, 2)
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=0)
    # by hand: a - n < 0 in rows 0..2; row 3 is (0, -1, 0, 3): normalised channel 0 = 2 sign + 0.5 is -1.5 in
    # rows 0..2 and (0.5, -1.5, 0.5, 2.5) in row 3; channel 1 = -2 sign + 0.5 reaches 2.5 in every window
    torch.testing.assert_close(out, torch.tensor([[[-1.5, -1.5], [0.5, 2.5]], [[2.5, 2.5], [2.5, 2.5]]]),
                               atol=1e-3, rtol=0)


def test_attention_known_answers():
    from baselines.htnet import Attention

    torch.manual_seed(0)
    att = Attention(6, heads=2).eval()
    # one position per block (HTNet's 28 px / patch 7 / 3 hierarchies at every level): softmax over one key
    # is 1, so the output is the projected values, to_out(W_v x)
    x = torch.randn(3, 6, 1, 1)
    v = torch.nn.functional.conv2d(x, att.to_qkv.weight[12:])
    torch.testing.assert_close(att(x), att.to_out(v))
    # two positions with equal keys: each output is the mean of the two values
    with torch.no_grad():
        att.to_qkv.weight[6:12].zero_()
    x2 = torch.randn(1, 6, 1, 2)
    v2 = torch.nn.functional.conv2d(x2, att.to_qkv.weight[12:])
    torch.testing.assert_close(att(x2), att.to_out(v2.mean(dim=-1, keepdim=True).expand(-1, -1, 1, 2)))


def test_blocks_round_trip_and_first_level_is_local():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    b = to_blocks(x, 2)
    assert b.shape == (8, 3, 2, 2)
    torch.testing.assert_close(b[1], x[0, :, :2, 2:])  # sample 0, block row 0, block column 1
    torch.testing.assert_close(from_blocks(b, 2), x)
    # the first hierarchy attends within 1-token blocks: changing one 14x14 mosaic cell (top-left) leaves
    # the first transformer's output at the other cells' tokens unchanged
    torch.manual_seed(0)
    model = HTNet.from_config(HTNetConfig(**TINY)).eval()
    transformer = model.layers[0][0]
    img = torch.rand(1, 3, 28, 28)
    img2 = img.clone()
    img2[:, :, :14, :14] += 1.0

    def first_level(im):
        return from_blocks(transformer(to_blocks(model.to_patch_embedding(im), 4)), 4)

    with torch.no_grad():
        y1, y2 = first_level(img), first_level(img2)
    torch.testing.assert_close(y1[..., 2:, :], y2[..., 2:, :])
    torch.testing.assert_close(y1[..., :, 2:], y2[..., :, 2:])
    assert not torch.allclose(y1[..., :2, :2], y2[..., :2, :2])


def test_overfits_a_tiny_batch():
    rng = np.random.default_rng(0)
    x = rng.random((12, 3, 28, 28), dtype=np.float32)
    y = np.arange(12) % 3
    cfg = TrainConfig(epochs=30, batch_size=12, lr=2e-3)
    res = train_fold(lambda: HTNet.from_config(HTNetConfig(dim=16, heads=2, block_repeats=(1, 1, 1))), x, y, x,
                     None, cfg, seed=0, n_classes=3)
    assert (res.y_pred == y).mean() == 1.0
    assert res.train_loss[-1] < 0.1 * res.train_loss[0]


# ---------------------------------------------------------------------------------------- patch cropping
def _coded_flow(size: int = 28) -> np.ndarray:
    """flow[c, r, q] = 1000 c + 100 r + q: every value names its channel, row and column."""
    c, r, q = np.meshgrid(np.arange(3), np.arange(size), np.arange(size), indexing="ij")
    return (1000 * c + 100 * r + q).astype(np.float32)


def _window_origin(mosaic: np.ndarray, cell_row: int, cell_col: int, half: int = 7) -> tuple[int, int]:
    v = int(mosaic[0, cell_row * 2 * half, cell_col * 2 * half])
    return v // 100, v % 100


def test_patch_centres_clip_to_7_21_and_truncate():
    lm = np.array([[3.2, 25.7], [21.9, 6.99], [14.5, 14.5], [7.0, 21.0], [20.999, 7.5]], dtype=np.float32)
    c, fallback = patch_centres(lm, 28, 7)
    assert not fallback
    assert c.tolist() == [[7, 21], [21, 7], [14, 14], [7, 21], [20, 7]]
    # HTNet's no-face coordinates: clipped, then truncated, as the reference
    c, fallback = patch_centres(None, 28, 7)
    assert fallback and c.tolist() == [[9, 11], [21, 10], [15, 17], [10, 21], [20, 21]]
    c2, fallback = patch_centres(np.full((5, 2), np.nan), 28, 7)
    assert fallback and c2.tolist() == c.tolist()
    assert patch_centres(FALLBACK_LANDMARKS * 2, 56, 14)[0].tolist() == [[19, 22], [42, 21], [30, 34], [20, 42],
                                                                         [41, 42]]


def test_landmark_patches_reference_arithmetic():
    flow = _coded_flow()
    lm = np.array([[3.2, 25.7], [21.9, 6.99], [14.5, 14.5], [9.0, 12.0], [20.999, 19.5]], dtype=np.float32)
    m = landmark_patches(flow, lm)  # centres (7, 21), (21, 7), nose, (9, 12), (20, 19)
    assert m.shape == (3, 28, 28) and m.dtype == np.float32
    # reference: window k = flow[:, x - 7:x + 7, y - 7:y + 7]; mosaic [[w0, w1], [w3, w4]]
    assert _window_origin(m, 0, 0) == (0, 14)   # x 7 -> rows 0..13, y 21 -> cols 14..27
    assert _window_origin(m, 0, 1) == (14, 0)   # x 21 -> rows 14..27, y 7 -> cols 0..13
    assert _window_origin(m, 1, 0) == (2, 5)    # (9, 12)
    assert _window_origin(m, 1, 1) == (13, 12)  # (20, 19)
    np.testing.assert_array_equal(m[:, :14, :14], flow[:, 0:14, 14:28])
    np.testing.assert_array_equal(m[:, 14:, 14:], flow[:, 13:27, 12:26])
    np.testing.assert_array_equal(m[2], m[0] + 2000)  # every channel cut at the same place
    # image convention: rows from y, columns from x, mosaic [[w0, w3], [w1, w4]]
    mi = landmark_patches(flow, lm, centres="image")
    assert [_window_origin(mi, r, q) for r in (0, 1) for q in (0, 1)] == [(14, 0), (5, 2), (0, 14), (12, 13)]


def test_landmark_patches_fixed_fallback_regions():
    m = landmark_patches(_coded_flow(), None)
    # centres [[9, 11], [21, 10], ., [10, 21], [20, 21]]: rows from x, columns from y
    assert [_window_origin(m, r, q) for r in (0, 1) for q in (0, 1)] == [(2, 4), (14, 3), (3, 14), (13, 14)]
    with pytest.raises(ValueError, match="centres"):
        landmark_patches(_coded_flow(), None, centres="rows")
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        landmark_patches(_coded_flow(), np.zeros((4, 2)))


# ------------------------------------------------------------------------------------------- harness
@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two clips of each of two subjects of synthetic-smic (s1, s11), views cached in a private folder
    (TV-L1 flow of each clip is most of the time)."""
    with synthetic_subset(tmp_path_factory, lambda groups: [groups[0], groups[2]]) as ds:
        yield ds.subset((ds.clips.groupby("group").cumcount() < 2).to_numpy())


@pytest.fixture
def fake_detector():
    """A ``face_landmarks`` view of the test's own (the detector's contract: (5, 2) x, y on the size grid,
    NaN without a face): fixed points for even rows, NaN for odd rows; removed afterwards."""
    points = np.array([[8.0, 9.0], [20.0, 9.0], [14.0, 15.0], [9.0, 20.0], [19.0, 20.0]], dtype=np.float32)

    def compute(ds, i, p, ctx):
        return points * (p["size"][0] / 28) if i % 2 == 0 else np.full((5, 2), np.nan, np.float32)

    real = V.VIEWS["face_landmarks"]
    V.VIEWS["face_landmarks"] = ViewDef("face_landmarks", compute, {"frame": "apex", "size": 28, "detect_size": None},
                                        "test detector", bases=lambda p: (ViewSpec.of("apex_frame", size=224),),
                                        version="test-detector")
    yield points
    V.VIEWS["face_landmarks"] = real


def test_registration_and_fixed_view_on_a_synthetic_dataset(small):
    spec = get_method("htnet")
    cfg = spec.config()
    assert "htnet" in spec.paper.lower() and spec.family == "deep"
    for key in ("lr", "batch_size", "epochs", "select_epoch", "centres", "landmarks"):
        assert len(spec.sources[key]) > 10
    mods = code_modules("htnet")  # its cached units follow the view module and the model library
    assert {"benchmarks.data.patch_views", "baselines.htnet", "benchmarks.methods.htnet"} <= mods
    assert "benchmarks.data.patch_views" not in code_modules("ststnet")
    views, note, preferred = resolve_views(spec, cfg, small)  # the MTCNN view of benchmarks.data.landmark_views
    assert views == (ViewSpec.of("landmark_patches", size=28, patch=14, landmarks="detector", centres="reference"),)
    assert note == "" and "benchmarks.data.landmark_views" in mods
    real = V.VIEWS.pop("face_landmarks")
    try:  # without a detector view the method falls back to the fixed coordinates, and says so
        views_fixed, note_fixed, _ = resolve_views(spec, cfg, small)
        with pytest.raises(ViewUnavailable, match="face_landmarks"):
            get_view(small, 0, ViewSpec.of("landmark_patches", landmarks="detector"))
    finally:
        V.VIEWS["face_landmarks"] = real
    assert views_fixed[0].kwargs["landmarks"] == "fixed" and "not registered" in note_fixed
    mosaic = view_array(small, "landmark_patches", rows=[0, 1], landmarks="fixed", progress=False)
    flow = view_array(small, "flow_uvs", rows=[0, 1], size=28, progress=False)
    assert mosaic.shape == (2, 3, 28, 28)
    for k in range(2):
        np.testing.assert_array_equal(mosaic[k], landmark_patches(flow[k], None))
    x = spec.inputs({"landmark_patches": mosaic}, cfg)
    np.testing.assert_allclose(x[:, 0], 255 * mosaic[:, 2], rtol=1e-6)  # BGR: strain first, times 255
    df = run_loso("htnet", small, epochs=1, folds=1, overrides={**TINY, "landmarks": "fixed"})
    assert len(df) == (small.clips["group"] == sorted(small.clips["group"].unique())[0]).sum()
    assert (df["views"] == str(views_fixed[0])).all() and df["protocol_note"].str.contains("fixed landmarks").all()


def test_detector_view_is_read_and_a_missing_face_falls_back(small, fake_detector):
    spec = get_method("htnet")
    views, note, _ = resolve_views(spec, spec.config(), small)
    assert views[0].kwargs["landmarks"] == "detector" and note == ""
    det = ViewSpec.of("landmark_patches", landmarks="detector")
    assert V.cache_key(small, 0, det) != V.cache_key(small, 0, ViewSpec.of("landmark_patches", landmarks="fixed"))
    flow = get_view(small, 0, ViewSpec.of("flow_uvs", size=28))
    np.testing.assert_array_equal(get_view(small, 0, det), landmark_patches(flow, fake_detector))
    flow1 = get_view(small, 1, ViewSpec.of("flow_uvs", size=28))  # no face -> the fixed coordinates
    np.testing.assert_array_equal(get_view(small, 1, det), landmark_patches(flow1, None))


def test_views_and_reference_input_on_public_megc(shared_data):
    import cv2

    from benchmarks.data.registry import load_dataset

    ds = load_dataset("megc2019-public", shared_data / "megc2019")
    spec = get_method("htnet")
    views, note, _ = resolve_views(spec, spec.config(), ds)
    assert views[0].name == "landmark_patches"
    rows = [0, len(ds.clips) - 1]
    x = spec.inputs({"landmark_patches": view_array(ds, "landmark_patches", rows=rows, landmarks="fixed",
                                                   progress=False)}, spec.config())
    for k, i in enumerate(rows):  # the reference's own arithmetic on cv2.imread of the published PNG
        img = cv2.imread(str(V._stored_path(ds, i, ds.stored_views["flow_uvs_28"])))
        w = [img[a - 7:a + 7, b - 7:b + 7] for a, b in patch_centres(None, 28, 7)[0]]
        ref = cv2.vconcat([cv2.hconcat([w[0], w[1]]), cv2.hconcat([w[3], w[4]])])
        np.testing.assert_array_equal(x[k], ref.transpose(2, 0, 1).astype(np.float32))
