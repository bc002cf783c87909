"""Quantisation-aware ESPCN and its int8 ONNX export (models/quantization.py), which the framework's export
calls through a duck-typed hook (framework/export.py)."""

from __future__ import annotations

import pytest
import torch

from models.espcn import espcn
from models.quantization import ActivationFakeQuant, Int8SimulatedESPCN, fake_quant_weight


def test_weight_fake_quant_is_per_channel_symmetric_int8():
    weight = torch.randn(4, 3, 5, 5) * torch.tensor([1.0, 0.1, 10.0, 0.01]).view(4, 1, 1, 1)
    quantised = fake_quant_weight(weight)
    scale = weight.abs().amax(dim=(1, 2, 3), keepdim=True) / 127
    steps = quantised / scale
    torch.testing.assert_close(steps, steps.round(), atol=1e-4, rtol=0)  # on each channel's own grid
    assert steps.abs().max() <= 127 + 1e-4
    assert ((quantised - weight).abs() <= scale / 2 + 1e-7).all()
    torch.testing.assert_close(quantised.abs().amax(dim=(1, 2, 3)), weight.abs().amax(dim=(1, 2, 3)))


def test_activation_range_follows_the_batch_extremes_then_freezes():
    quant = ActivationFakeQuant(momentum=0.5).train()
    quant(torch.tensor([-1.0, 3.0]))  # the first batch sets the range
    assert (float(quant.low), float(quant.high)) == (-1.0, 3.0)
    quant(torch.tensor([-3.0, 1.0]))  # then an EMA: low = -1 + 0.5·(-3 + 1), high = 3 + 0.5·(1 - 3)
    assert (float(quant.low), float(quant.high)) == (-2.0, 2.0)
    scale, zero_point = quant.qparams()
    assert scale == pytest.approx(4 / 255) and zero_point == round(2 / (4 / 255))
    quant.eval()
    out = quant(torch.tensor([-5.0, 0.0, 0.7, 5.0]))
    assert (float(quant.low), float(quant.high)) == (-2.0, 2.0)  # frozen in eval
    expected = (torch.tensor([0.0, zero_point, zero_point + round(0.7 / scale), 255]) - zero_point) * scale
    torch.testing.assert_close(out, expected)  # clamped to the range; 0 exact


def test_fixed_range_never_moves():
    quant = ActivationFakeQuant(fixed_range=(0.0, 1.0)).train()
    out = quant(torch.tensor([0.4, 2.0]))
    assert (float(quant.low), float(quant.high)) == (0.0, 1.0)
    torch.testing.assert_close(out, torch.tensor([round(0.4 * 255) / 255, 1.0]))


def test_qat_net_starts_from_a_float_espcn_and_stays_close_to_it():
    torch.manual_seed(0)
    float_net = espcn(2).eval()
    qat = Int8SimulatedESPCN(espcn(2))
    qat.load_state_dict(float_net.state_dict())  # a float run's weights, as init_weights passes them
    torch.testing.assert_close(qat.net.body[0].weight, float_net.body[0].weight)
    x = torch.rand(2, 3, 12, 12)
    qat.train()(x)  # ranges from one batch
    qat.eval()
    with torch.no_grad():
        out, reference = qat(x), float_net(x)
    assert out.shape == reference.shape == (2, 3, 24, 24)
    assert 0 < (out - reference).abs().max() < 0.02  # int8 rounding: a few 1/255 output steps
    steps = out * 255  # the output activation is uint8 on [0, 1]-ish range: a grid of values
    assert len(torch.unique(steps.round(decimals=3))) <= 256


def test_straight_through_gradients_reach_every_weight():
    qat = Int8SimulatedESPCN(espcn(2)).train()
    qat(torch.rand(1, 3, 8, 8)).mean().backward()
    for name, param in qat.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_int8_onnx_export_runs_what_training_simulated(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from framework.export import OnnxNet, export_net

    torch.manual_seed(0)
    qat = Int8SimulatedESPCN(espcn(3)).train()
    for _ in range(2):
        qat(torch.rand(2, 3, 16, 16))
    qat.eval()
    path = export_net(qat, tmp_path / "int8.onnx", torch.rand(1, 3, 12, 12))  # the net's own export
    assert path.is_file() and not (tmp_path / "int8.float.onnx").exists()
    onnx = pytest.importorskip("onnx")
    assert "QuantizeLinear" in {node.op_type for node in onnx.load(str(path)).graph.node}
    x = torch.rand(1, 3, 21, 17)
    with torch.no_grad():
        got, expected = OnnxNet(path)(x), qat(x)
    diff = (got - expected).abs()
    output_step = qat.activation_qparams()[-1][0]
    assert qat.onnx_tolerance == pytest.approx(2.5 * output_step)
    assert diff.max() < qat.onnx_tolerance and diff.mean() < 1e-3


def test_an_untrained_qat_net_refuses_the_int8_export(tmp_path):
    pytest.importorskip("onnxscript")
    with pytest.raises(ValueError, match="train the net"):
        Int8SimulatedESPCN(espcn(2)).eval().export_onnx(tmp_path / "int8.onnx", torch.rand(1, 3, 8, 8))


def test_post_training_int8_quantisation_follows_the_float_model(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from framework.export import OnnxNet, export_onnx
    from models.quantization import quantize_int8

    torch.manual_seed(0)
    net = espcn(2).eval()
    calibration = [torch.rand(1, 3, 16, 16) for _ in range(4)]
    float_path = export_onnx(net, tmp_path / "float.onnx", calibration[0])
    path = quantize_int8(float_path, tmp_path / "int8.onnx", calibration)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        got, expected = OnnxNet(path)(x), net(x)
    assert got.shape == expected.shape == (1, 3, 32, 32)
    assert 0 < (got - expected).abs().max() < 0.05  # int8 rounding, not the float model exactly
