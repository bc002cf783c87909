"""A trained network out of its Lightning checkpoint, and into ONNX (checked against torch with ONNX Runtime).

A run directory holds ``config_resolved.yaml`` (written by :func:`framework.runner.run`) and
``checkpoints/*.ckpt``; the config says how to build the net (``module.net``, a ``_target_`` node) and the
checkpoint's ``state_dict`` holds its weights under ``net.``. Nothing here knows about a task.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from framework.errors import UserError

__all__ = [
    "check_onnx",
    "export_checkpoint",
    "export_int8_onnx",
    "export_onnx",
    "find_run_config",
    "load_net",
    "onnx_session",
    "quantize_int8",
]


def find_run_config(ckpt_path: str | Path) -> Path:
    """``config_resolved.yaml`` of the run a checkpoint belongs to (``<run>/checkpoints/x.ckpt``)."""
    ckpt_path = Path(ckpt_path)
    for folder in (ckpt_path.parent, ckpt_path.parent.parent):
        if (folder / "config_resolved.yaml").is_file():
            return folder / "config_resolved.yaml"
    raise UserError(
        f"no config_resolved.yaml beside {ckpt_path} or in its run dir: pass the run's config explicitly"
    )


def load_net(ckpt_path: str | Path, config_path: str | Path | None = None) -> tuple[nn.Module, DictConfig]:
    """The network of a run, with the checkpoint's weights, in eval mode; and the run's config."""
    ckpt_path = Path(ckpt_path)
    if not ckpt_path.is_file():
        raise UserError(f"checkpoint {ckpt_path} does not exist: give the path of a .ckpt file")
    config_path = config_path or find_run_config(ckpt_path)
    cfg = OmegaConf.load(config_path)
    if not isinstance(cfg, DictConfig) or OmegaConf.select(cfg, "module.net._target_") is None:
        raise UserError(f"{config_path} has no module.net._target_: is it a run's config_resolved.yaml?")
    net: nn.Module = hydra.utils.instantiate(cfg.module.net)
    checkpoint: dict[str, Any] = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    state = {k.removeprefix("net."): v for k, v in checkpoint["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(state)
    except RuntimeError as error:
        raise UserError(
            f"{ckpt_path} does not match the net of its config ({type(net).__name__}): {error}"
        ) from None
    return net.eval(), cfg


def export_onnx(net: nn.Module, path: str | Path, example: Tensor | None = None) -> Path:
    """Export ``net`` ((B, C, h, w) → (B, C, s·h, s·w)) to ONNX with dynamic batch, height and width.

    Input ``lr``, output ``sr``, float32, weights inside the one file; ``example`` (default a 1×3×32×32
    random image) only traces it.
    Needs the ``onnx`` and ``onnxscript`` packages (torch's dynamo exporter).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.rand(1, 3, 32, 32) if example is None else example
    dims = {0: torch.export.Dim("batch", min=1), 2: torch.export.Dim("h"), 3: torch.export.Dim("w")}
    name = next(iter(inspect.signature(net.forward).parameters))  # dynamic_shapes is keyed by it
    try:
        torch.onnx.export(
            net.eval(),
            (example,),
            str(path),
            input_names=["lr"],
            output_names=["sr"],
            dynamic_shapes={name: dims},
            dynamo=True,
            external_data=False,  # one self-contained file (the weights are small)
            verbose=False,
        )
    except ImportError as error:
        raise UserError(f"ONNX export needs `pip install onnx onnxscript` ({error})") from None
    return path


def quantize_int8(
    float_path: str | Path,
    path: str | Path,
    calibration: list[Tensor],
    overrides: dict[str, tuple[float, int]] | None = None,
) -> Path:
    """ONNX Runtime's static int8 quantisation (QDQ format) of the model at ``float_path`` into ``path``: int8
    per-channel symmetric weights, uint8 activations whose ranges are the min / max over the ``calibration``
    inputs, except the tensors in ``overrides`` (name → (scale, zero point)), which keep the given ones."""
    import numpy as np
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    input_name = onnx.load(str(float_path)).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter({input_name: x.float().numpy()} for x in calibration)

        def get_next(self) -> dict[str, Any] | None:
            return next(self.items, None)

    tensor_overrides = {
        name: [{"scale": np.array(scale, np.float32), "zero_point": np.array(zero_point, np.uint8)}]
        for name, (scale, zero_point) in (overrides or {}).items()
    }
    quantize_static(
        str(float_path),
        str(path),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        extra_options={"TensorQuantOverrides": tensor_overrides, "WeightSymmetric": True},
    )
    return Path(path)


def export_int8_onnx(net: nn.Module, path: str | Path) -> Path:
    """Export a quantisation-aware net (:class:`models.quantization.Int8SimulatedESPCN`: ``net.net`` the
    float net, ``net.activation_qparams()`` its frozen uint8 ranges) to an int8 QDQ ONNX model that ONNX
    Runtime runs with integer convolutions: for the graph input and the output of every compute node (all
    but DepthToSpace, in graph order) the (scale, zero point) that QAT learned, so ONNX Runtime rounds where
    the training's simulation did."""
    import onnx

    path = Path(path)
    try:
        qparams = net.activation_qparams()
    except ValueError as error:
        raise UserError(f"cannot export {type(net).__name__} to int8: {error}") from None
    float_path = export_onnx(net.net, path.with_name(f"{path.stem}.float.onnx"))
    graph = onnx.load(str(float_path)).graph
    tensors = [graph.input[0].name] + [n.output[0] for n in graph.node if n.op_type != "DepthToSpace"]
    if len(tensors) != len(qparams):
        raise UserError(f"{float_path} has {len(tensors)} tensors to quantise, the net {len(qparams)} ranges")
    # every range is overridden: the one calibration image only lets the quantiser run
    quantize_int8(float_path, path, [torch.zeros(1, 3, 8, 8)], dict(zip(tensors, qparams, strict=True)))
    float_path.unlink()
    return path


def onnx_session(path: str | Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session of ``path`` (``threads``: intra-op threads; None: ORT's default)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("checking an ONNX model needs `pip install onnxruntime`") from None
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def check_onnx(path: str | Path, net: nn.Module, inputs: Tensor) -> float:
    """Max |ONNX Runtime − torch| of ``net`` on ``inputs`` (float32)."""
    session = onnx_session(path)
    with torch.no_grad():
        expected = net.eval()(inputs)
    (got,) = session.run(["sr"], {"lr": inputs.float().numpy()})
    if got.shape != tuple(expected.shape):
        raise UserError(f"ONNX output shape {got.shape} differs from torch {tuple(expected.shape)}")
    return float((torch.from_numpy(got) - expected).abs().max())


def export_checkpoint(
    ckpt_path: str | Path,
    output: str | Path | None = None,
    config_path: str | Path | None = None,
    atol: float = 1e-4,
    check_size: tuple[int, int] = (45, 61),
) -> tuple[Path, float]:
    """Load a run's net, export it to ``output`` (default: the checkpoint's path with ``.onnx``), and check
    ONNX Runtime against torch on a random image of ``check_size`` (not the traced size, so the dynamic
    height / width are exercised). Returns (path, max abs difference); raises if the difference ≥ ``atol``.

    A quantisation-aware net (with ``activation_qparams``) becomes the int8 model (:func:`export_int8_onnx`);
    ONNX Runtime may round a tie the other way than torch, so ``atol`` is at least 1.5 steps of the (uint8)
    output."""
    net, _ = load_net(ckpt_path, config_path)
    output = output or Path(ckpt_path).with_suffix(".onnx")
    if hasattr(net, "activation_qparams"):
        path = export_int8_onnx(net, output)
        atol = max(atol, 1.5 * net.activation_qparams()[-1][0])
    else:
        path = export_onnx(net, output)
    generator = torch.Generator().manual_seed(0)
    diff = check_onnx(path, net, torch.rand(1, 3, *check_size, generator=generator))
    if not diff < atol:
        raise UserError(f"ONNX Runtime differs from torch by {diff:.3g} (>= {atol:g}) for {path}")
    return path, diff
