"""The project's one VGG19 feature extractor, and the pixel + content (perceptual) loss for super-resolution.

:class:`VGGFeatures` serves every loss that needs VGG features (SR's content loss, style transfer's Gram /
content losses, AdaIN's encoder): named layers ``conv1_1, relu1_1, … conv5_4, relu5_4`` (a ``conv*`` layer
is the convolution's output before its ReLU), RGB input in [0, 1] normalised inside, only the layers up to
the deepest requested one are built and run.

Content loss (Johnson et al., ECCV 2016; Ledig et al., CVPR 2017):
``L(x̂, x) = MSE(x̂, x) + λ · Σ_l MSE(φ_l(x̂), φ_l(x))`` with φ_l the VGG19 ReLU features of layer l.

Weights, in order of preference:

* the "normalised" VGG19 (Gatys et al. 2016 rescaling, as in WCT/AdaIN) up to relu3_1, stored offline in
  ``../shared/weights/vgg_normalised_conv3_1.pth`` (repo-relative): a 1×1 preprocessing conv maps RGB in
  [0, 1] to BGR·255 − ImageNet mean, then 3×3 convs with reflection padding;
* torchvision's ImageNet VGG19 (``weights="torchvision"`` reads the torch hub cache, or a path to a saved
  ``torchvision.models.vgg19().state_dict()``): ImageNet mean/std normalisation, zero padding, every layer up
  to relu5_4;
* random weights, with one warning per process: the content term is then meaningless.

The network is frozen (no gradients to its weights, always in eval mode) and is left out of ``state_dict()``
so checkpoints neither store nor overwrite it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from framework.errors import UserError
from framework.paths import PROJECT_ROOT, shared_weights_dir

__all__ = [
    "DEFAULT_VGG_WEIGHTS",
    "VGG19_ALL_LAYERS",
    "VGG19_LAYERS",
    "VGG19_PLAN",
    "LoadedVGGWeights",
    "PixelContentLoss",
    "VGGFeatures",
    "VGGLayerError",
    "load_vgg_weights",
]

# the offline VGG (../shared/weights/README.md), where run.py looks for it ($IMAGING_LAB_SHARED_WEIGHTS too)
DEFAULT_VGG_WEIGHTS = shared_weights_dir() / "vgg_normalised_conv3_1.pth"

# VGG19 convolutions (name, in, out) and pools, in order (Simonyan & Zisserman 2015, configuration E).
VGG19_PLAN: tuple[tuple[str, int, int] | str, ...] = (
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), "pool",
    ("conv2_1", 64, 128), ("conv2_2", 128, 128), "pool",
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256), "pool",
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512), "pool",
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
)  # fmt: skip
_CONVS = [step for step in VGG19_PLAN if isinstance(step, tuple)]
VGG19_LAYERS: tuple[str, ...] = tuple("relu" + name[4:] for name, _, _ in _CONVS)
# Every named output in network order: conv1_1 (before its ReLU), relu1_1, conv1_2, relu1_2, …
VGG19_ALL_LAYERS: tuple[str, ...] = tuple(
    layer for name, _, _ in _CONVS for layer in (name, "relu" + name[4:])
)
# Index of each conv in the state dicts: the normalised nn.Sequential and torchvision's ``features``.
_NORMALISED_INDEX = dict(
    zip(("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1"), (2, 5, 9, 12, 16), strict=True)
)
_TORCHVISION_INDEX = dict(
    zip(
        [name for name, _, _ in _CONVS],
        (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34),
        strict=True,
    )
)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)

_warned_random_weights = False


class VGGLayerError(UserError, ValueError):
    """A requested VGG layer that the loaded weights do not have.

    A :class:`UserError` (``run.py`` prints it as one line) and a ``ValueError`` (what the pure functions
    here raise for a bad argument), so either ``except`` catches it.
    """


def _warn_random_weights(reason: str) -> None:
    """Warn once per process that the VGG weights are random."""
    global _warned_random_weights
    if _warned_random_weights:
        return
    _warned_random_weights = True
    warnings.warn(
        f"VGG features use RANDOM weights ({reason}): VGG content/style losses are meaningless. Fix: put "
        f"vgg_normalised_conv3_1.pth at {DEFAULT_VGG_WEIGHTS} (or set IMAGING_LAB_SHARED_WEIGHTS), pass its "
        "path as weights=, or use weights='torchvision' with vgg19-dcbb9e9d.pth in the torch hub cache; or "
        "set the content weight to 0 (SR).",
        UserWarning,
        stacklevel=4,
    )


def _resolve(path: str | Path) -> Path:
    """``~`` expanded; a relative path is taken relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


def _torchvision_cache_file() -> Path:
    from torchvision.models import VGG19_Weights

    return Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG19_Weights.IMAGENET1K_V1.url).name


def _conv_key(flavour: str, conv: str) -> str | None:
    """State-dict key prefix of a conv in a file of this flavour (None: the flavour never has it)."""
    if flavour == "normalised":
        index = _NORMALISED_INDEX.get(conv)
        return None if index is None else str(index)
    return f"features.{_TORCHVISION_INDEX[conv]}"


@dataclass(frozen=True, eq=False)
class LoadedVGGWeights:
    """VGG19 weights read once (:func:`load_vgg_weights`), to build a :class:`VGGFeatures` from.

    Attributes:
        state: the state dict, or None for random weights.
        flavour: ``"normalised"`` (RGB [0, 1] → BGR·255 − Caffe mean by a 1×1 conv, reflection padding,
            ceil-mode pooling) or ``"torchvision"`` (ImageNet mean/std, zero padding).
        source: what was read, for messages.
        available: the layer names these weights provide, in network order (a prefix of
            ``VGG19_ALL_LAYERS``).
    """

    state: dict[str, Tensor] | None
    flavour: str
    source: str
    available: tuple[str, ...]

    @property
    def has_deep_layers(self) -> bool:
        """Whether the layers of Gatys et al. (up to relu5_1) are available, i.e. pretrained full VGG19."""
        return self.state is not None and "relu5_1" in self.available


def _available_layers(state: dict[str, Tensor] | None, flavour: str) -> tuple[str, ...]:
    """The conv/relu names whose convolutions (and all before them) are in ``state``."""
    convs = [name for name, _, _ in _CONVS]
    if flavour == "normalised":
        convs = convs[: convs.index("conv3_1") + 1]
    available: list[str] = []
    for conv in convs:
        key = _conv_key(flavour, conv)
        if state is not None and (key is None or f"{key}.weight" not in state or f"{key}.bias" not in state):
            break
        available += [conv, "relu" + conv[4:]]
    return tuple(available)


def load_vgg_weights(weights: str | Path | None, allow_download: bool = False) -> LoadedVGGWeights:
    """Read VGG19 weights (see :class:`VGGFeatures` for ``weights``); random ones warn once per process."""
    if weights is None:
        _warn_random_weights("weights=None")
        return LoadedVGGWeights(None, "normalised", "random weights", _available_layers(None, "normalised"))
    if str(weights) == "torchvision":
        cached = _torchvision_cache_file()
        if cached.is_file():
            state = _read(cached)
        elif allow_download:
            from torchvision.models import VGG19_Weights

            state = VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=False)
        else:
            _warn_random_weights(f"weights='torchvision' but {cached} is not there and allow_download=False")
            return LoadedVGGWeights(
                None, "torchvision", "random weights", _available_layers(None, "torchvision")
            )
        source = f"torchvision's VGG19 ({cached.name})"
        return LoadedVGGWeights(state, "torchvision", source, _available_layers(state, "torchvision"))
    path = _resolve(weights)
    if not path.is_file():
        _warn_random_weights(f"no file at {path}")
        return LoadedVGGWeights(None, "normalised", "random weights", _available_layers(None, "normalised"))
    state = _read(path)
    if "0.weight" in state and tuple(state["0.weight"].shape) == (3, 3, 1, 1):
        flavour = "normalised"
    elif "features.0.weight" in state:
        flavour = "torchvision"
    else:
        raise UserError(
            f"'{path}' is neither vgg_normalised_conv3_1.pth (keys 0.*, 2.*, …) nor a torchvision vgg19 "
            f"state_dict (keys features.*): found keys {list(state)[:4]}…"
        )
    return LoadedVGGWeights(state, flavour, f"'{path}'", _available_layers(state, flavour))


def _read(path: Path) -> dict[str, Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"cannot read VGG weights '{path}' ({reason}): replace the file") from None
    if isinstance(state, Mapping) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise UserError(f"VGG weights '{path}' hold a {type(state).__name__}, not a state_dict")
    return dict(state)


def _missing_layers_message(missing: list[str], loaded: LoadedVGGWeights) -> str:
    """One line: which layers are missing, why, which are available and how to get deeper ones."""
    if loaded.flavour == "normalised":
        why = "the normalised VGG19 stops at relu3_1"
    else:
        absent = next(name for name, _, _ in _CONVS if name not in loaded.available)
        why = f"no {_conv_key(loaded.flavour, absent)}.weight for {absent}"
    return (
        f"VGG layers {missing} are not in {loaded.source} ({why}): available {', '.join(loaded.available)}. "
        "For deeper layers pass weights='torchvision' (torchvision's ImageNet VGG19: vgg19-dcbb9e9d.pth in "
        "the torch hub cache, or allow_download=True) or the path of a saved torchvision vgg19 state_dict."
    )


class VGGFeatures(nn.Module):
    """Frozen VGG19 features: RGB (B, 3, H, W) in [0, 1] → ``{layer: (B, C_l, H_l, W_l)}``, exactly the
    requested layers, in the requested order.

    Args:
        layers: names among ``VGG19_ALL_LAYERS``: ``conv1_1 … conv5_4`` (a convolution's output before its
            ReLU) and ``relu1_1 … relu5_4``; with the offline normalised weights only up to relu3_1. A layer
            the loaded weights do not have raises :class:`VGGLayerError`, naming the available ones.
        weights: path (relative paths are relative to the repo root) to the normalised VGG state dict or
            to a torchvision ``vgg19`` state dict (format detected from its keys); ``"torchvision"`` for the
            ImageNet weights in the torch hub cache (downloaded only if ``allow_download``); ``None`` for
            random weights; or weights already read by :func:`load_vgg_weights`. A missing file or cache
            falls back to random weights, warning once per process.
        allow_download: let ``weights="torchvision"`` download when the file is not cached.

    Only the convolutions up to the deepest requested layer are built, and ``forward`` stops there. The
    spatial size halves at each max-pool (after conv1_2, conv2_2, conv3_4, conv4_4): rounded up for the
    normalised weights (Torch7's ceil mode), down for torchvision's.
    """

    def __init__(
        self,
        layers: Sequence[str] = ("relu1_2", "relu2_2"),
        weights: str | Path | LoadedVGGWeights | None = DEFAULT_VGG_WEIGHTS,
        allow_download: bool = False,
    ) -> None:
        super().__init__()
        layers = tuple(layers)
        if not layers:
            raise ValueError(f"layers must name at least one of {VGG19_ALL_LAYERS}")
        unknown = [name for name in layers if name not in VGG19_ALL_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG19 layers {unknown}: choose among {VGG19_ALL_LAYERS}")
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers {layers} name a layer twice: list each once")
        self.layers = layers

        if isinstance(weights, LoadedVGGWeights):
            loaded = weights
        else:
            loaded = load_vgg_weights(weights, allow_download)
        missing = [name for name in layers if name not in loaded.available]
        if missing:
            raise VGGLayerError(_missing_layers_message(missing, loaded))
        self.flavour = loaded.flavour
        self.available_layers = loaded.available
        self.pretrained = loaded.state is not None
        padding_mode = "reflect" if loaded.flavour == "normalised" else "zeros"

        self.preprocess = nn.Conv2d(3, 3, 1)  # normalisation as a fixed 1×1 conv for both flavours
        self._plan: list[str] = []
        self.convs = nn.ModuleDict()
        deepest = max(layers, key=VGG19_ALL_LAYERS.index)
        last_conv = "conv" + deepest[4:] if deepest.startswith("relu") else deepest
        for step in VGG19_PLAN:
            if step == "pool":
                self._plan.append("pool")
                continue
            name, c_in, c_out = step
            self.convs[name] = nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode=padding_mode)
            self._plan.append(name)
            if name == last_conv:
                break
        self._init_weights(loaded.state, loaded.flavour)

        self.requires_grad_(False)
        super().train(False)
        self.register_state_dict_post_hook(_drop_own_keys)
        self.register_load_state_dict_pre_hook(_keep_own_weights)

    @torch.no_grad()
    def _init_weights(self, state: dict[str, Tensor] | None, flavour: str) -> None:
        weight = self.preprocess.weight
        if flavour == "normalised":
            # RGB in [0, 1] → BGR·255 − Caffe mean: the conv stored in the file, or its known values.
            if state is not None:
                self.preprocess.weight.copy_(state["0.weight"])
                self.preprocess.bias.copy_(state["0.bias"])
            else:
                weight.zero_()
                for out_channel in range(3):
                    weight[out_channel, 2 - out_channel, 0, 0] = 255.0
                self.preprocess.bias.copy_(-torch.tensor(_CAFFE_BGR_MEAN))
        else:
            # (x − mean) / std per channel.
            std, mean = torch.tensor(_IMAGENET_STD), torch.tensor(_IMAGENET_MEAN)
            weight.zero_()
            weight[:, :, 0, 0] = torch.diag(1.0 / std)
            self.preprocess.bias.copy_(-mean / std)
        if state is None:
            return
        for name, conv in self.convs.items():
            key = _conv_key(flavour, name)
            w, b = state[f"{key}.weight"], state[f"{key}.bias"]
            if w.shape != conv.weight.shape:
                raise UserError(
                    f"VGG weights {key}.weight has shape {tuple(w.shape)}, {name} needs {conv.weight.shape}"
                )
            conv.weight.copy_(w)
            conv.bias.copy_(b)

    def train(self, mode: bool = True) -> VGGFeatures:
        """Always stays in eval mode (frozen feature extractor)."""
        return super().train(False)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGGFeatures expects RGB (B, 3, H, W) in [0, 1], got shape {tuple(x.shape)}")
        wanted = set(self.layers)
        found: dict[str, Tensor] = {}
        h = self.preprocess(x)
        for step in self._plan:
            if step == "pool":
                h = F.max_pool2d(h, 2, 2, ceil_mode=self.flavour == "normalised")
                continue
            h = self.convs[step](h)
            if step in wanted:  # the conv output is returned: keep it, ReLU into a new tensor
                found[step] = h
                h = F.relu(h)
            else:  # in place: a conv's backward does not need its output
                h = F.relu(h, inplace=True)
            relu = "relu" + step[4:]
            if relu in wanted:
                found[relu] = h
        return {name: found[name] for name in self.layers}

    def extra_repr(self) -> str:
        return f"layers={self.layers}, flavour={self.flavour!r}, pretrained={self.pretrained}"


def _drop_own_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, local_metadata: Any) -> None:
    """State-dict post-hook: the frozen VGG is not saved in checkpoints."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]


def _keep_own_weights(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load pre-hook: whatever a checkpoint holds (or lacks) for the VGG, keep the weights loaded at build."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        del state_dict[key]
    for name, tensor in [*module.named_parameters(), *module.named_buffers()]:
        state_dict[prefix + name] = tensor.detach()


class PixelContentLoss(nn.Module):
    """``MSE(x̂, x) + λ · Σ_l MSE(φ_l(x̂), φ_l(x))`` (the course slide's SR loss), a scalar.

    Args:
        content_weight: λ ≥ 0; 0 gives plain MSE and builds no VGG at all.
        layers: VGG19 layers φ_l (see :class:`VGGFeatures`).
        weights: VGG weights (see :class:`VGGFeatures`).

    After each call, ``last_terms`` holds the detached parts for logging: ``{"mse"}`` and, when λ > 0,
    ``{"content"}`` (the unweighted Σ_l MSE). The target's features are computed without gradient.
    """

    def __init__(
        self,
        content_weight: float = 0.0,
        layers: Sequence[str] = ("relu1_2", "relu2_2"),
        weights: str | Path | None = DEFAULT_VGG_WEIGHTS,
    ) -> None:
        super().__init__()
        if content_weight < 0:
            raise ValueError(f"content_weight (λ) must be >= 0, got {content_weight}")
        self.content_weight = float(content_weight)
        self.vgg: VGGFeatures | None = VGGFeatures(layers, weights) if content_weight > 0 else None
        self.last_terms: dict[str, Tensor] = {}

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        if pred.shape != target.shape:
            raise ValueError(f"pred and target shapes differ: {tuple(pred.shape)} vs {tuple(target.shape)}")
        mse = F.mse_loss(pred, target)
        terms = {"mse": mse.detach()}
        loss = mse
        if self.vgg is not None:
            pred_features = self.vgg(pred)
            with torch.set_grad_enabled(target.requires_grad and torch.is_grad_enabled()):
                target_features = self.vgg(target)
            content = sum(
                (F.mse_loss(pred_features[name], target_features[name]) for name in self.vgg.layers),
                start=torch.zeros((), device=pred.device, dtype=mse.dtype),
            )
            terms["content"] = content.detach()
            loss = mse + self.content_weight * content
        self.last_terms = terms
        return loss

    def extra_repr(self) -> str:
        return f"content_weight={self.content_weight}"
