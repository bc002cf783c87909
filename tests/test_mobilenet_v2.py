"""Tests for models/tflite.py and models/mobilenet_v2.py: the TFLite reader's dequantisation, the converted
network's ImageNet top-1 against the TFLite interpreter on the file itself, TF "SAME" padding, the dilated
feature mode (exactly the classifier's features on a finer grid) and the missing-weights behaviour."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import models.mobilenet_v2 as mnv2
from framework.errors import UserError
from models.mobilenet_v2 import MobileNetV2, mobilenet_v2, tf_same_padding, tflite_state_dict
from models.tflite import read_tflite

pytestmark = pytest.mark.usefixtures("single_thread")  # small tensors: one thread, no stalls

WEIGHTS_DIR = mnv2.default_weights_path().parent
FILES = ("tf2_mobilenet_v2_1.0_224_ptq.tflite", "mobilenet_v2_1.0_224_quant.tflite")
needs_weights = pytest.mark.skipif(
    not (WEIGHTS_DIR / FILES[0]).is_file(), reason=f"{WEIGHTS_DIR / FILES[0]} not present"
)
# skimage.data photos with an unambiguous ImageNet class (1001-class index: 0 is background):
# chelsea → 286 "Egyptian cat", coffee → 968 "espresso", rocket → 658 "missile".
PHOTOS = ("chelsea", "coffee", "rocket", "astronaut")


def _photo(name: str) -> np.ndarray:
    import skimage.data

    img = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    return np.array(img.resize((224, 224), Image.BILINEAR))  # uint8 (224, 224, 3)


@needs_weights
def test_reader_dequantises_per_channel() -> None:
    graph = read_tflite(WEIGHTS_DIR / FILES[0])
    kinds = [op.kind for op in graph.ops]
    assert kinds.count("CONV_2D") == 36 and kinds.count("DEPTHWISE_CONV_2D") == 17
    depthwise = next(op for op in graph.ops if op.kind == "DEPTHWISE_CONV_2D")
    tensor = graph.tensors[depthwise.inputs[1]]
    assert tensor.shape == (1, 3, 3, 32) and tensor.dtype is np.int8
    assert tensor.scale.shape == (32,) and tensor.quantized_dimension == 3  # one scale per channel
    q = tensor.data.astype(np.float64)
    for c in (0, 7, 31):
        expected = (q[..., c] - tensor.zero_point[c]) * tensor.scale[c]
        np.testing.assert_allclose(tensor.dequantize()[..., c], expected, rtol=1e-6)
    assert depthwise.options["stride"] == 1 and depthwise.options["activation"] == "RELU6"


def test_reader_rejects_other_files(tmp_path) -> None:
    path = tmp_path / "x.tflite"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(ValueError, match="TFL3"):
        read_tflite(path)


@needs_weights
@pytest.mark.parametrize("filename", FILES)
def test_top1_matches_tflite_interpreter(filename: str) -> None:
    """The converted net's ImageNet class is the TFLite file's own (its int8 graph run by LiteRT)."""
    interpreter_module = pytest.importorskip("ai_edge_litert.interpreter")
    path = WEIGHTS_DIR / filename
    interpreter = interpreter_module.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    net = mobilenet_v2(weights=path).eval()
    images = np.stack([_photo(name) for name in PHOTOS])
    with torch.no_grad():
        probs = net(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255).softmax(dim=1).numpy()
    for i, name in enumerate(PHOTOS):
        interpreter.set_tensor(inp["index"], images[i : i + 1].astype(inp["dtype"]))
        interpreter.invoke()
        scale, zero_point = out["quantization"]
        reference = (interpreter.get_tensor(out["index"])[0].astype(np.float32) - zero_point) * scale
        assert probs[i].argmax() == reference.argmax(), name
        # float weights vs the int8 graph: the class probabilities agree to a few points
        assert np.abs(probs[i] - reference).max() < 0.06, name
    assert probs[:3].argmax(axis=1).tolist() == [286, 968, 658]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "expected"),
    [
        ((224, 224), 3, 2, 1, (0, 1, 0, 1)),  # even: the extra pixel at the bottom / right
        ((225, 224), 3, 2, 1, (0, 1, 1, 1)),  # odd height: symmetric rows
        ((7, 7), 3, 1, 2, (2, 2, 2, 2)),  # stride 1, rate 2
        ((9, 8), 2, 2, 1, (0, 0, 0, 1)),  # even kernel: the pad goes to the end
    ],
)
def test_tf_same_padding(size, kernel, stride, dilation, expected) -> None:
    assert tf_same_padding(size, kernel, stride, dilation) == expected


def test_stride_two_conv_matches_tf_same_convention() -> None:
    """A stride-2 3×3 conv on an even input sees rows 2i … 2i+2 (the last padded), as TF's "SAME"."""
    conv = mnv2.ConvAct(1, 1, 3, stride=2, relu6=False)
    with torch.no_grad():
        conv.conv.weight.zero_()
        conv.conv.weight[0, 0, 0, 0] = 1.0  # picks the top-left tap
        conv.conv.bias.zero_()
    x = torch.arange(36.0).view(1, 1, 6, 6)
    assert torch.equal(conv(x)[0, 0], x[0, 0, ::2, ::2])


@pytest.mark.parametrize(("output_stride", "offset"), [(16, 1), (8, 3)])
def test_dilated_features_equal_classifier_features_on_a_finer_grid(output_stride: int, offset: int) -> None:
    """With TF "SAME" padding, dilation instead of stride reproduces the stride-32 features exactly at every
    (32 / output_stride)-th pixel, so the pretrained filters keep their meaning."""
    torch.manual_seed(0)
    base = MobileNetV2(num_classes=None, output_stride=32, weights=None).eval()
    dilated = MobileNetV2(num_classes=None, output_stride=output_stride, weights=None).eval()
    dilated.load_state_dict(base.state_dict())
    x = torch.rand(1, 3, 128, 96)
    with torch.no_grad():
        coarse, fine = base.forward_features(x), dilated.forward_features(x)
    step = 32 // output_stride
    assert fine["out"].shape[-2:] == (128 // output_stride, 96 // output_stride)
    assert torch.allclose(fine["out"][..., offset::step, offset::step], coarse["out"], atol=1e-4)
    assert torch.equal(fine["low"], coarse["low"])
    if output_stride == 16:
        assert torch.equal(fine["aux"], coarse["aux"])


@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_feature_shapes_for_odd_sizes(output_stride: int) -> None:
    net = MobileNetV2(num_classes=None, output_stride=output_stride, weights=None)
    feats = net.forward_features(torch.rand(2, 3, 257, 193))
    up = -(-257 // output_stride), -(-193 // output_stride)
    assert feats["out"].shape == (2, 320, *up)
    aux = min(output_stride, 16)
    assert feats["aux"].shape == (2, 96, -(-257 // aux), -(-193 // aux))
    assert feats["low"].shape == (2, 24, 65, 49)
    assert {k: v.shape[1] for k, v in feats.items()} == MobileNetV2.feature_channels


def test_backbone_only_has_no_classifier() -> None:
    net = MobileNetV2(num_classes=None, weights=None)
    assert not hasattr(net, "classifier") and not hasattr(net, "last_conv")
    with pytest.raises(ValueError, match="forward_features"):
        net(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="output_stride"):
        MobileNetV2(output_stride=4, weights=None)


@needs_weights
def test_conversion_is_cached_and_backbone_loads_without_classifier() -> None:
    path = WEIGHTS_DIR / FILES[0]
    tflite_state_dict(path)
    hits = mnv2._convert.cache_info().hits
    backbone = MobileNetV2(num_classes=None, output_stride=8, weights=path)
    assert mnv2._convert.cache_info().hits == hits + 1
    full = MobileNetV2(weights=path)
    assert torch.equal(backbone.blocks[16].project.conv.weight, full.blocks[16].project.conv.weight)


def test_missing_default_weights_warn_once_and_explicit_path_fails(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("IMAGING_LAB_SHARED_WEIGHTS", str(tmp_path))
    monkeypatch.setattr(mnv2, "_warned_random", False)
    with pytest.warns(UserWarning, match="RANDOM weights"):
        MobileNetV2(num_classes=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MobileNetV2(num_classes=None)  # once per process
        MobileNetV2(num_classes=None, weights=None)  # asked for random: no warning
    with pytest.raises(UserError, match="does not exist"):
        MobileNetV2(weights=tmp_path / "nope.tflite")
