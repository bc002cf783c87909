"""Style-transfer losses on VGG features: Gram matrix, style loss, content loss, total variation.

The lecture's style loss (Gatys, Ecker & Bethge, "Image Style Transfer Using Convolutional Neural Networks",
CVPR 2016), for VGG feature maps φ_j(x) of shape C_j × H_j × W_j:

* Gram matrix ``G_j(x)(c, c') = 1/(H_j W_j) Σ_{h,w} φ_j(x)(c, h, w) φ_j(x)(c', h, w)``;
* style loss ``L_style(y_s, ŷ) = Σ_j w_j ‖G_j(y_s) − G_j(ŷ)‖²_F``;
* content loss ``L_content(y_c, ŷ) = Σ_l MSE(φ_l(y_c), φ_l(ŷ))`` (the mean, not the lecture's sum, so that
  its weight does not depend on the image size);
* total variation ``L_tv(ŷ)``: kornia's anisotropic L1 variation with ``reduction="mean"``, averaged over
  channels.

:class:`StyleTransferLoss` combines them on one :class:`~losses.perceptual.VGGFeatures` (one VGG pass per
image for all layers): ``L = α L_content + β L_style + γ L_tv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from kornia.losses import total_variation
from torch import Tensor, nn

from losses.perceptual import DEFAULT_VGG_WEIGHTS, VGG19_ALL_LAYERS, VGG19_PLAN, VGGFeatures, load_vgg_weights

__all__ = [
    "GATYS_CONTENT_LAYERS",
    "GATYS_STYLE_LAYERS",
    "OFFLINE_CONTENT_LAYERS",
    "OFFLINE_STYLE_LAYERS",
    "StyleTransferLoss",
    "content_loss",
    "default_layer_weights",
    "gram_matrix",
    "style_loss",
    "total_variation_loss",
]

# Gatys et al. 2016 (§3): style conv1_1 … conv5_1, content conv4_2; their Caffe ReLUs run in place, so the
# responses they match are the rectified ones, named relu* here.
GATYS_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
GATYS_CONTENT_LAYERS: tuple[str, ...] = ("relu4_2",)
# What the offline normalised VGG19 (up to relu3_1) allows: the same first three style layers, and its
# deepest layer for content (the deepest content layer leaves the most freedom to the style, as conv4_2 does).
OFFLINE_STYLE_LAYERS: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1")
OFFLINE_CONTENT_LAYERS: tuple[str, ...] = ("relu3_1",)


def _check_features(x: Tensor, name: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} must be (B, C, H, W) feature maps, got shape {tuple(x.shape)}")


class _PixelGram(torch.autograd.Function):
    """``rowsᵀ rows`` of pixel rows (B, N, C) and its gradient ``rows (g + gᵀ)``: one matrix product each
    way, the gradient in the rows' own layout (autograd's two-use product transposes one of them back)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, rows: Tensor) -> Tensor:
        ctx.save_for_backward(rows)
        return torch.bmm(rows.transpose(1, 2), rows)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (rows,) = ctx.saved_tensors  # type: ignore[attr-defined]
        return torch.bmm(rows, grad + grad.transpose(1, 2))


def gram_matrix(features: Tensor) -> Tensor:
    """``G(c, c') = 1/(H W) Σ_{h,w} φ(c, h, w) φ(c', h, w)`` (the lecture's Gram matrix), batched.

    Args:
        features: φ, (B, C, H, W).

    Returns:
        (B, C, C), symmetric. Computed in float32 at least (also under autocast): a bf16 Gram sums H·W
        products with 8 mantissa bits. Channels-last features are read as the (B, HW, C) pixel rows they
        are in memory, so neither the cast nor the gradient transposes them (:class:`_PixelGram`): the fast
        mode at 512 px, bf16 and channels-last on one core, took 3.8 s when they did, 2.0 s now.
    """
    _check_features(features, "features")
    b, c, h, w = features.shape
    pixel_rows = features.is_contiguous(memory_format=torch.channels_last) and not features.is_contiguous()
    rows = features.permute(0, 2, 3, 1).reshape(b, h * w, c) if pixel_rows else features.reshape(b, c, h * w)
    if rows.dtype in (torch.float16, torch.bfloat16):
        rows = rows.float()
    with torch.autocast(device_type=rows.device.type, enabled=False):
        gram = _PixelGram.apply(rows) if pixel_rows else torch.bmm(rows, rows.transpose(1, 2))
    return gram / (h * w)


def default_layer_weights(channels: Mapping[str, int]) -> dict[str, float]:
    """``w_j = 1 / (J C_j²)`` for J layers with C_j channels: each layer's term is the mean squared Gram
    difference, and the layers count equally (Gatys et al. 2016, eq. 4–5, ``w_l = 1/J`` with
    ``E_l = (1/(4 N_l² M_l²)) Σ (G_l − A_l)²`` on unnormalised Grams = ``(1/(4 N_l²)) ‖G − A‖²_F`` on the
    lecture's 1/(H W)-normalised ones; the constant 1/4 is left to the style weight)."""
    if not channels:
        raise ValueError("channels must name at least one layer")
    return {name: 1.0 / (len(channels) * c**2) for name, c in channels.items()}


def style_loss(
    grams: Mapping[str, Tensor], style_grams: Mapping[str, Tensor], layer_weights: Mapping[str, float]
) -> Tensor:
    """``L_style = Σ_j w_j ‖G_j(y_s) − G_j(ŷ)‖²_F`` per sample (the lecture's style loss).

    Args:
        grams: ``{layer: G_j(ŷ)}``, each (B, C_j, C_j) (see :func:`gram_matrix`).
        style_grams: ``{layer: G_j(y_s)}``, each (B, C_j, C_j) or (1, C_j, C_j) (one style for the batch).
        layer_weights: ``{layer: w_j}``; the sum runs over these layers.

    Returns:
        (B,) losses.
    """
    if not layer_weights:
        raise ValueError("layer_weights must name at least one layer")
    total: Tensor | None = None
    for name, weight in layer_weights.items():
        if name not in grams or name not in style_grams:
            raise ValueError(
                f"layer {name!r} of layer_weights is missing from grams {list(grams)} "
                f"or style_grams {list(style_grams)}"
            )
        g, g_style = grams[name], style_grams[name]
        if g.ndim != 3 or g_style.shape[-2:] != g.shape[-2:]:
            raise ValueError(
                f"Gram matrices of layer {name!r} do not match: {tuple(g.shape)} vs {tuple(g_style.shape)}"
            )
        term = weight * (g - g_style).square().sum(dim=(1, 2))
        total = term if total is None else total + term
    assert total is not None
    return total


def content_loss(features: Tensor, target_features: Tensor) -> Tensor:
    """``MSE(φ_l(ŷ), φ_l(y_c))`` per sample: the mean over C, H, W. (B, C, H, W) × 2 → (B,)."""
    _check_features(features, "features")
    if features.shape != target_features.shape:
        raise ValueError(
            f"features and target_features shapes differ: {tuple(features.shape)} vs "
            f"{tuple(target_features.shape)} (content and output must have the same size)"
        )
    return (features - target_features).square().flatten(1).mean(dim=1)


def total_variation_loss(image: Tensor) -> Tensor:
    """Mean anisotropic L1 variation per sample: kornia ``total_variation(reduction="mean")``
    (``mean |∂_y x| + mean |∂_x x|`` per channel), averaged over channels. (B, C, H, W) → (B,)."""
    _check_features(image, "image")
    return total_variation(image, reduction="mean").mean(dim=1)


Targets = Mapping[str, Tensor]
_CHANNELS = {name[4:]: c_out for name, _, c_out in (s for s in VGG19_PLAN if s != "pool")}  # "1_1" → 64


class StyleTransferLoss(nn.Module):
    """``L = α L_content(y_c, ŷ) + β L_style(y_s, ŷ) + γ L_tv(ŷ)`` on one frozen VGG19, batch-averaged.

    Args:
        content_weight: α ≥ 0 (0: no content term, no content image needed).
        style_weight: β ≥ 0 (0: no style term).
        tv_weight: γ ≥ 0.
        style_layers: VGG layers of the Gram matrices; ``None``: Gatys et al.'s relu1_1 … relu5_1 when the
            weights are the pretrained full VGG19, else the offline relu1_1, relu2_1, relu3_1.
        content_layers: ``None``: relu4_2 (Gatys) with the full VGG19, else relu3_1.
        style_layer_weights: w_j, one per style layer; ``None``: :func:`default_layer_weights`.
        weights, allow_download: the VGG19 weights (see :class:`~losses.perceptual.VGGFeatures`).

    ``forward(pred, content, style=None)`` returns the scalar total (batch mean) and keeps the unweighted
    batch means of its parts in ``last_parts = {"content", "style", "tv"}`` (a part only when its weight is
    > 0), as :class:`~losses.perceptual.PixelContentLoss` keeps ``last_terms``; :meth:`per_sample` gives
    the same parts per image, (B,) each. ``content`` and ``style`` are images (B or 1, 3, H, W) in [0, 1], or
    targets computed once by :meth:`content_targets` / :meth:`style_targets`; ``style=None`` uses the style
    fixed by :meth:`set_style`.
    """

    def __init__(
        self,
        content_weight: float = 1.0,
        style_weight: float = 10.0,
        tv_weight: float = 0.0,
        style_layers: Sequence[str] | None = None,
        content_layers: Sequence[str] | None = None,
        style_layer_weights: Sequence[float] | None = None,
        weights: str | Path | None = DEFAULT_VGG_WEIGHTS,
        allow_download: bool = False,
    ) -> None:
        super().__init__()
        terms = {"content_weight": content_weight, "style_weight": style_weight, "tv_weight": tv_weight}
        for name, value in terms.items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if content_weight == 0 and style_weight == 0:
            raise ValueError("content_weight and style_weight are both 0: make one of them positive")
        unknown = [n for n in (*(style_layers or ()), *(content_layers or ())) if n not in VGG19_ALL_LAYERS]
        if unknown:
            raise ValueError(f"unknown VGG19 layers {unknown}: choose among {VGG19_ALL_LAYERS}")
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        loaded = load_vgg_weights(weights, allow_download)
        deep = loaded.has_deep_layers
        self.style_layers = tuple(style_layers or (GATYS_STYLE_LAYERS if deep else OFFLINE_STYLE_LAYERS))
        self.content_layers = tuple(
            content_layers or (GATYS_CONTENT_LAYERS if deep else OFFLINE_CONTENT_LAYERS)
        )
        needed = (self.style_layers if style_weight > 0 else ()) + (
            self.content_layers if content_weight > 0 else ()
        )
        self.vgg = VGGFeatures(tuple(dict.fromkeys(needed)), loaded)

        channels = {name: _CHANNELS[name[4:]] for name in self.style_layers}
        if style_layer_weights is None:
            self.style_layer_weights = default_layer_weights(channels)
        else:
            style_layer_weights = tuple(float(w) for w in style_layer_weights)
            if len(style_layer_weights) != len(self.style_layers) or any(w < 0 for w in style_layer_weights):
                raise ValueError(
                    f"style_layer_weights needs {len(self.style_layers)} non-negative weights (one per style "
                    f"layer {self.style_layers}), got {style_layer_weights}"
                )
            self.style_layer_weights = dict(zip(self.style_layers, style_layer_weights, strict=True))
        self._fixed_style: tuple[str, ...] = ()
        self.last_parts: dict[str, Tensor] = {}

    def features(self, image: Tensor) -> dict[str, Tensor]:
        """All VGG layers this loss uses, one pass: (B, 3, H, W) in [0, 1] → ``{layer: φ_l}``."""
        return self.vgg(image)

    def _style_targets_from(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {name: gram_matrix(features[name]) for name in self.style_layers}

    @torch.no_grad()
    def style_targets(self, style: Tensor) -> dict[str, Tensor]:
        """``{layer: G_j(y_s)}`` of a style image (B or 1, 3, H, W), without gradient, to reuse."""
        if self.style_weight == 0:
            return {}
        return self._style_targets_from(self.vgg(style))

    @torch.no_grad()
    def content_targets(self, content: Tensor) -> dict[str, Tensor]:
        """``{layer: φ_l(y_c)}`` of the content images (B, 3, H, W), without gradient, to reuse."""
        if self.content_weight == 0:
            return {}
        features = self.vgg(content)
        return {name: features[name] for name in self.content_layers}

    def set_style(self, style: Tensor) -> None:
        """Fix the style image (1, 3, H, W): its Grams are kept as (non-checkpointed) buffers."""
        if style.ndim != 4 or style.shape[0] != 1:
            raise ValueError(f"set_style takes one style image (1, 3, H, W), got shape {tuple(style.shape)}")
        for name, gram in self.style_targets(style).items():
            self.register_buffer(f"style_gram_{name}", gram, persistent=False)
        self._fixed_style = self.style_layers

    def has_style(self) -> bool:
        """Whether :meth:`set_style` fixed a style (``style=None`` is then allowed)."""
        return bool(self._fixed_style)

    def per_sample(
        self, pred: Tensor, content: Tensor | Targets | None, style: Tensor | Targets | None = None
    ) -> dict[str, Tensor]:
        """The unweighted parts per image: ``{"content", "style", "tv"}`` → (B,) each (a part only when its
        weight is > 0)."""
        features = self.vgg(pred)
        parts: dict[str, Tensor] = {}
        if self.content_weight > 0:
            if content is None:
                raise ValueError("content is None but content_weight > 0: pass the content image")
            targets = self.content_targets(content) if isinstance(content, Tensor) else content
            parts["content"] = sum(
                (content_loss(features[name], targets[name]) for name in self.content_layers),
                start=torch.zeros(pred.shape[0], device=pred.device),
            )
        if self.style_weight > 0:
            if style is None:
                if not self._fixed_style:
                    raise ValueError("style is None and no style was fixed: pass style= or call set_style()")
                style_grams = {name: getattr(self, f"style_gram_{name}") for name in self.style_layers}
            else:
                style_grams = self.style_targets(style) if isinstance(style, Tensor) else style
            grams = self._style_targets_from(features)
            parts["style"] = style_loss(grams, style_grams, self.style_layer_weights)
        if self.tv_weight > 0:
            parts["tv"] = total_variation_loss(pred)
        return parts

    def weighted_total(self, parts: Mapping[str, Tensor]) -> Tensor:
        """``α content + β style + γ tv`` of parts from :meth:`per_sample` (per image) or their means."""
        weights = {"content": self.content_weight, "style": self.style_weight, "tv": self.tv_weight}
        return sum(weights[name] * value for name, value in parts.items())  # type: ignore[return-value]

    def forward(
        self, pred: Tensor, content: Tensor | Targets | None, style: Tensor | Targets | None = None
    ) -> Tensor:
        parts = {name: value.mean() for name, value in self.per_sample(pred, content, style).items()}
        self.last_parts = {name: value.detach() for name, value in parts.items()}
        return self.weighted_total(parts)

    def extra_repr(self) -> str:
        return (
            f"content_weight={self.content_weight}, style_weight={self.style_weight}, "
            f"tv_weight={self.tv_weight}, style_layers={self.style_layers}, "
            f"content_layers={self.content_layers}"
        )
