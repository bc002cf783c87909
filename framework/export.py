"""A trained network out of its run, and into ONNX (checked against torch with ONNX Runtime).

A run directory holds ``config_resolved.yaml`` (written by :func:`framework.runner.run`), ``metrics.json`` and
``checkpoints/*.ckpt``; the config says how to build the LightningModule (``module``, a ``_target_`` node,
its net under ``module.net``) and the checkpoint's ``state_dict`` holds the net's weights under ``net.``.
The task supplies the example input that traces the export (``module.example_input``); a net that knows a
better export of itself (e.g. a quantisation-aware one, whose ONNX model is int8) defines
``export_onnx(path, example) -> Path`` and ``onnx_tolerance`` and is exported that way. Nothing here knows
about a task.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import hydra
import torch
from lightning.pytorch import LightningModule
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from framework.checkpoint_io import load_net_weights
from framework.errors import UserError
from framework.results import read_results

__all__ = [
    "INPUT_NAME",
    "OUTPUT_NAME",
    "OnnxNet",
    "build_module",
    "check_inputs",
    "check_onnx",
    "export_checked",
    "export_checkpoint",
    "export_net",
    "export_onnx",
    "find_run_config",
    "load_net",
    "load_run",
    "onnx_session",
    "use_onnx_runtime",
]

INPUT_NAME, OUTPUT_NAME = "input", "output"  # the exported graph's input and output


def find_run_config(ckpt_path: str | Path) -> Path:
    """``config_resolved.yaml`` of the run a checkpoint belongs to (``<run>/checkpoints/x.ckpt``)."""
    ckpt_path = Path(ckpt_path)
    for folder in (ckpt_path.parent, ckpt_path.parent.parent):
        if (folder / "config_resolved.yaml").is_file():
            return folder / "config_resolved.yaml"
    raise UserError(
        f"no config_resolved.yaml beside {ckpt_path} or in its run dir: pass the run's config explicitly"
    )


def _run_files(path: str | Path, config_path: str | Path | None) -> tuple[Path, Path | None]:
    """(config, checkpoint or None) of a run dir (its tested checkpoint) or of a checkpoint file."""
    path = Path(path)
    if path.is_dir():
        config = Path(config_path) if config_path else path / "config_resolved.yaml"
        if not config.is_file():
            raise UserError(f"{path} has no config_resolved.yaml: give the directory of a run of run.py")
        checkpoint = read_results(path).get("tested_checkpoint")
        return config, Path(checkpoint) if checkpoint else None
    if not path.is_file():
        raise UserError(f"checkpoint {path} does not exist: give the path of a .ckpt file or of a run dir")
    return Path(config_path) if config_path else find_run_config(path), path


def build_module(cfg: DictConfig, checkpoint: str | Path | None = None) -> LightningModule:
    """The LightningModule of a run's config, in eval mode, its net's weights from ``checkpoint`` (None: as
    the config builds it). The training loss is not built (``loss=None``): running the net does not need it,
    and it may load weights of its own (a perceptual loss)."""
    if OmegaConf.select(cfg, "module.net._target_") is None:
        raise UserError("the config has no module.net._target_: is it a run's config_resolved.yaml?")
    module: LightningModule = hydra.utils.instantiate(cfg.module, loss=None)
    if checkpoint is not None:
        load_net_weights(module.net, checkpoint)
    return module.eval()


def load_run(path: str | Path, config_path: str | Path | None = None) -> tuple[LightningModule, DictConfig]:
    """The LightningModule of a run (:func:`build_module`), its net holding the trained weights; and the
    run's config.

    ``path`` is a checkpoint (its config found beside it, or ``config_path``) or a run dir (its config and the
    checkpoint its ``metrics.json`` says was tested; a run without one, e.g. ``stage=test`` of a model with
    nothing to train, or a net that loads its own weights, keeps the net as its config builds it)."""
    config, checkpoint = _run_files(path, config_path)
    cfg = OmegaConf.load(config)
    if not isinstance(cfg, DictConfig) or OmegaConf.select(cfg, "module.net._target_") is None:
        raise UserError(f"{config} has no module.net._target_: is it a run's config_resolved.yaml?")
    return build_module(cfg, checkpoint), cfg


def load_net(path: str | Path, config_path: str | Path | None = None) -> tuple[nn.Module, DictConfig]:
    """The network of a run (a checkpoint or a run dir, as :func:`load_run`), in eval mode; and its config."""
    module, cfg = load_run(path, config_path)
    return module.net.eval(), cfg


def export_onnx(net: nn.Module, path: str | Path, example: Tensor) -> Path:
    """Export ``net`` (one (B, C, H, W) tensor in, one out) to ONNX: input ``input``, output ``output``,
    float32, weights inside the one file; ``example`` only traces it. Batch, height and width stay dynamic
    where the net allows (``torch.export.Dim.AUTO``: a net that needs a fixed size keeps it); an example of
    batch 1 is traced as a batch of 2 (``torch.export`` would take a dimension of size 1 for a constant).
    Needs the ``onnx`` and ``onnxscript`` packages (torch's dynamo exporter)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if example.shape[0] == 1:
        example = example.expand(2, *example.shape[1:]).contiguous()
    auto = torch.export.Dim.AUTO
    name = next(iter(inspect.signature(net.forward).parameters))  # dynamic_shapes is keyed by it
    try:
        torch.onnx.export(
            net.eval(),
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={name: {0: auto, 2: auto, 3: auto}},
            dynamo=True,
            external_data=False,  # one self-contained file (the weights are small)
            verbose=False,
        )
    except ImportError as error:
        raise UserError(f"ONNX export needs `pip install onnx onnxscript` ({error})") from None
    return path


def export_net(net: nn.Module, path: str | Path, example: Tensor) -> Path:
    """``net.export_onnx(path, example)`` when the net defines its own export, else :func:`export_onnx`."""
    own = getattr(net, "export_onnx", None)
    return Path(own(path, example)) if callable(own) else export_onnx(net, path, example)


def onnx_session(path: str | Path, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session of ``path`` (``threads``: intra-op threads; None: ORT's default)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("running an ONNX model needs `pip install onnxruntime`") from None
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxNet(nn.Module):
    """An ONNX model run by ONNX Runtime on the CPU, as a torch module: a (B, C, H, W) float tensor in, the
    model's first output out (float32, on the input's device). No gradients, no parameters."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.session = onnx_session(self.path, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name

    def forward(self, x: Tensor) -> Tensor:
        feed = {self.input_name: x.detach().float().contiguous().cpu().numpy()}
        (out,) = self.session.run([self.output_name], feed)
        return torch.from_numpy(out).to(x.device)

    def extra_repr(self) -> str:
        return str(self.path)


def check_onnx(path: str | Path, net: nn.Module, inputs: Tensor) -> float:
    """Max |ONNX Runtime − torch| of ``net`` on ``inputs`` (float32)."""
    with torch.no_grad():
        expected = net.eval()(inputs)
        got = OnnxNet(path)(inputs)
    if got.shape != expected.shape:
        raise UserError(f"ONNX output shape {tuple(got.shape)} differs from torch {tuple(expected.shape)}")
    return float((got - expected).abs().max())


def check_inputs(net: nn.Module, example: Tensor) -> Tensor:
    """What the export is checked on: a batch of 3 of twice the example's height and three times its width
    (not the traced size, so dynamic dimensions are exercised; multiples keep any divisibility a net needs),
    or of the example's size when the torch net does not accept another one."""
    generator = torch.Generator().manual_seed(0)
    _, channels, height, width = example.shape
    low, high = float(example.min()), float(example.max())
    for size in ((2 * height, 3 * width), (height, width)):
        inputs = low + (high - low) * torch.rand(3, channels, *size, generator=generator)
        try:
            with torch.no_grad():
                net.eval()(inputs)
        except Exception:  # any error: the net does not take this size; try the next one
            continue
        return inputs
    return example


def export_checked(
    net: nn.Module, path: str | Path, example: Tensor, atol: float = 1e-4
) -> tuple[Path, float]:
    """:func:`export_net` of ``net`` traced on ``example``, then ONNX Runtime checked against torch on
    :func:`check_inputs`. Returns (path, max abs difference). A net that cannot be exported, or a difference
    ≥ ``atol`` (or ≥ the net's own ``onnx_tolerance`` when it is larger: an int8 model rounds a tie the other
    way than torch), raises :class:`UserError` and leaves no file behind."""
    net = net.eval()
    try:
        path = export_net(net, path, example)
    except ValueError as error:
        raise UserError(f"cannot export {type(net).__name__}: {error}") from None
    atol = max(atol, float(getattr(net, "onnx_tolerance", 0.0)))
    diff = check_onnx(path, net, check_inputs(net, example))
    if not diff < atol:
        path.unlink(missing_ok=True)
        raise UserError(f"ONNX Runtime differs from torch by {diff:.3g} (>= {atol:g}) for {path}")
    return path, diff


def export_checkpoint(
    ckpt_path: str | Path,
    output: str | Path | None = None,
    config_path: str | Path | None = None,
    atol: float = 1e-4,
) -> tuple[Path, float]:
    """Load a run's net and :func:`export_checked` it to ``output`` (default: the checkpoint's path with
    ``.onnx``), traced on the task's example input (``module.example_input(1)``)."""
    module, _ = load_run(ckpt_path, config_path)
    output = output or Path(ckpt_path).with_suffix(".onnx")
    return export_checked(module.net, output, module.example_input(1).float(), atol)


def use_onnx_runtime(module: LightningModule, ckpt_path: str | Path) -> Path:
    """``runtime=onnx``: load the checkpoint into ``module`` and put ONNX Runtime in place of ``module.net``
    (the rest of the module, its pre- and post-processing, metrics and outputs, stays torch). The net is
    :func:`export_checked` beside the checkpoint (``<ckpt>.onnx``; again when the checkpoint is newer);
    ONNX Runtime gets torch's thread count. Returns the ONNX file."""
    state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    module.on_load_checkpoint(state)  # as Lightning's loading: a checkpoint of another task or net is refused
    try:
        module.load_state_dict(state.get("state_dict", state))
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise UserError(f"ckpt_path={ckpt_path} does not fit this model ({first})") from None
    ckpt, path = Path(ckpt_path), Path(ckpt_path).with_suffix(".onnx")
    if not path.is_file() or path.stat().st_mtime < ckpt.stat().st_mtime:
        try:
            export_checked(module.net, path, module.example_input(1).float())
        except UserError as error:
            raise UserError(f"runtime=onnx: {error}: use runtime=torch") from None
    module.net = OnnxNet(path, threads=torch.get_num_threads())
    return path
