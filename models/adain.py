"""Arbitrary style transfer with adaptive instance normalisation (Huang & Belongie, "Arbitrary Style Transfer
in Real-time with Adaptive Instance Normalization", ICCV 2017).

* encoder f: the project's frozen VGG19 (:class:`~losses.perceptual.VGGFeatures`) up to relu3_1 offline
  (relu4_1, the paper's, when the full VGG19 is available);
* ``AdaIN(x, y) = σ(y) (x − μ(x)) / σ(x) + μ(y)``, μ and σ per sample and channel over H, W (eq. 8);
* ``t = α AdaIN(f(c), f(s)) + (1 − α) f(c)`` (content/style trade-off, §7.2), output ``g(t)``;
* decoder g: the encoder mirrored (each conv reversed, each max-pool replaced by nearest upsampling,
  reflection-padded 3×3 convs, ReLU after each but the last), upsampling back to the sizes the encoder saw,
  so odd input sizes come back unchanged.

Training losses (§6): ``L = L_c + λ L_s`` with ``L_c = MSE(f(g(t)), t)`` at the encoder's last layer and
``L_s = Σ_i MSE(μ(φ_i(g(t))), μ(φ_i(s))) + MSE(σ(φ_i(g(t))), σ(φ_i(s)))`` over the relu1_1 … relu3_1 (or
relu4_1) layers. The paper writes L2 norms; its released code (and this) uses the mean squared error.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from losses.perceptual import DEFAULT_VGG_WEIGHTS, VGG19_PLAN, VGGFeatures, load_vgg_weights

__all__ = [
    "AdaINDecoder",
    "AdaINStyleTransfer",
    "adain",
    "adain_content_loss",
    "adain_style_loss",
    "channel_mean_std",
]

# Encoder layers per depth: the style-loss layers, the last one is the AdaIN layer (one per resolution).
_ENCODER_LAYERS = {
    "relu3_1": ("relu1_1", "relu2_1", "relu3_1"),
    "relu4_1": ("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
}


def channel_mean_std(x: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """μ(x), σ(x) = sqrt(Var(x) + eps) per sample and channel over H, W (population variance).
    (B, C, H, W) → two (B, C, 1, 1)."""
    if x.ndim != 4:
        raise ValueError(f"x must be (B, C, H, W) feature maps, got shape {tuple(x.shape)}")
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    return mean, (var + eps).sqrt()


def adain(content_feat: Tensor, style_feat: Tensor, eps: float = 1e-5) -> Tensor:
    """``AdaIN(x, y) = σ(y) (x − μ(x)) / σ(x) + μ(y)`` (Huang & Belongie 2017, eq. 8).

    Args:
        content_feat: x, (B, C, H, W).
        style_feat: y, (B or 1, C, H', W') (any spatial size: only its statistics are used).
        eps: added to the variances.

    Returns:
        (B, C, H, W) whose per-channel means and stds are the style's (up to eps).
    """
    if content_feat.ndim != 4 or style_feat.ndim != 4 or content_feat.shape[1] != style_feat.shape[1]:
        raise ValueError(
            f"content_feat and style_feat must be (B, C, H, W) with the same C, got "
            f"{tuple(content_feat.shape)} and {tuple(style_feat.shape)}"
        )
    if style_feat.shape[0] not in (1, content_feat.shape[0]):
        raise ValueError(f"style_feat batch must be 1 or {content_feat.shape[0]}, got {style_feat.shape[0]}")
    content_mean, content_std = channel_mean_std(content_feat, eps)
    style_mean, style_std = channel_mean_std(style_feat, eps)
    return style_std * (content_feat - content_mean) / content_std + style_mean


def adain_content_loss(output_feat: Tensor, target: Tensor) -> Tensor:
    """``L_c = MSE(f(g(t)), t)``: the decoded image's last encoder features against the AdaIN target t."""
    return F.mse_loss(output_feat, target)


def adain_style_loss(output_feats: list[Tensor], style_feats: list[Tensor], eps: float = 1e-5) -> Tensor:
    """``L_s = Σ_i MSE(μ(φ_i(g(t))), μ(φ_i(s))) + MSE(σ(φ_i(g(t))), σ(φ_i(s)))`` (eq. 12, squared).

    Style features of batch 1 are broadcast to the output's batch.
    """
    if len(output_feats) != len(style_feats) or not output_feats:
        raise ValueError(
            f"need one style feature per output feature, got {len(output_feats)} and {len(style_feats)}"
        )
    total = torch.zeros((), device=output_feats[0].device)
    for out, sty in zip(output_feats, style_feats, strict=True):
        out_mean, out_std = channel_mean_std(out, eps)
        sty_mean, sty_std = channel_mean_std(sty, eps)
        total = total + F.mse_loss(out_mean, sty_mean.expand_as(out_mean))
        total = total + F.mse_loss(out_std, sty_std.expand_as(out_std))
    return total


class AdaINDecoder(nn.Module):
    """The VGG19 encoder up to ``layer`` mirrored: (B, C_layer, h, w) → (B, 3, H, W).

    Args:
        layer: the encoder's last layer, ``"relu3_1"`` or ``"relu4_1"`` (Huang & Belongie's decoder).
        width: multiplier of the hidden widths (1.0: the mirror's 256/128/64; smaller is a CPU-speed lever).
        padding: ``"reflect"`` (the paper) or ``"zeros"`` (a CPU-speed lever in bf16 channels-last, where
            torch's reflection pad is a separate, slow copy).

    ``forward(t, sizes)`` upsamples (nearest) to each of ``sizes``, the encoder's spatial sizes from the
    finest level up to the one before ``layer`` (so odd sizes come back exactly).
    """

    def __init__(self, layer: str = "relu3_1", width: float = 1.0, padding: str = "reflect") -> None:
        super().__init__()
        if padding not in ("reflect", "zeros"):
            raise ValueError(f"padding must be 'reflect' or 'zeros', got {padding!r}")
        if layer not in _ENCODER_LAYERS:
            raise ValueError(f"layer must be one of {tuple(_ENCODER_LAYERS)}, got {layer!r}")
        if width <= 0:
            raise ValueError(f"width must be > 0, got {width}")
        self.layer = layer
        last_conv = "conv" + layer[4:]
        # Encoder convs per resolution level, finest first: [[conv1_1, conv1_2], [conv2_1, conv2_2], …].
        levels: list[list[tuple[str, int, int]]] = [[]]
        for step in VGG19_PLAN:
            if step == "pool":
                levels.append([])
                continue
            levels[-1].append(step)
            if step[0] == last_conv:
                break
        first_conv, final_conv = levels[-1][-1], levels[0][0]

        def conv(step: tuple[str, int, int]) -> nn.Module:
            _, c_in, c_out = step  # reversed: c_out → c_in, hidden widths scaled, input and RGB kept
            width_in = c_out if step is first_conv else max(1, round(c_out * width))
            width_out = c_in if step is final_conv else max(1, round(c_in * width))
            layers: list[nn.Module] = [nn.Conv2d(width_in, width_out, 3, padding=1, padding_mode=padding)]
            if step is not final_conv:
                layers.append(nn.ReLU(inplace=True))
            return nn.Sequential(*layers)

        # Decoder stages, coarsest first, each the reversed convs of one level; nearest ×2 up between stages.
        self.stages = nn.ModuleList(
            nn.Sequential(*(conv(step) for step in reversed(level))) for level in reversed(levels)
        )

    def forward(self, t: Tensor, sizes: list[tuple[int, int]]) -> Tensor:
        if len(sizes) != len(self.stages) - 1:
            raise ValueError(f"sizes needs {len(self.stages) - 1} (H, W) pairs (finest first), got {sizes}")
        h = self.stages[0](t)
        for stage, size in zip(self.stages[1:], reversed(sizes), strict=True):
            h = stage(F.interpolate(h, size=size, mode="nearest"))
        return h


class AdaINStyleTransfer(nn.Module):
    """Encoder (frozen VGG19) → AdaIN → trained decoder (Huang & Belongie 2017).

    Args:
        layer: the AdaIN layer, ``"relu3_1"`` or ``"relu4_1"`` (the paper); ``None``: relu4_1 when the weights
            are the pretrained full VGG19, else relu3_1.
        vgg_weights, allow_download: the encoder's weights (see :class:`~losses.perceptual.VGGFeatures`).
        decoder_width, decoder_padding: the decoder's hidden-width multiplier and padding (see
            :class:`AdaINDecoder`).
        eps: variance epsilon of AdaIN and the style statistics.
        style_weight: λ of the training loss ``L_c + λ L_s`` (the paper: 10).
        alpha: the default content/style trade-off α of ``forward`` (1: full style).

    ``forward(content, style, alpha=None)`` → the stylised image (B, 3, H, W) clamped to [0, 1], at the
    content's size; ``style`` is an image (1 or B, 3, H', W') or its features from :meth:`encode`. Called
    again with the same style tensor outside training (a fixed style at test / predict time), it reuses the
    style's features. The encoder is frozen and left out of ``state_dict()`` (only the decoder is trained and
    saved).
    """

    def __init__(
        self,
        layer: str | None = None,
        vgg_weights: str | Path | None = DEFAULT_VGG_WEIGHTS,
        allow_download: bool = False,
        decoder_width: float = 1.0,
        decoder_padding: str = "reflect",
        eps: float = 1e-5,
        style_weight: float = 10.0,
        alpha: float = 1.0,
    ) -> None:
        super().__init__()
        if style_weight < 0:
            raise ValueError(f"style_weight (λ) must be >= 0, got {style_weight}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        loaded = load_vgg_weights(vgg_weights, allow_download)
        if layer is None:
            layer = "relu4_1" if loaded.has_deep_layers else "relu3_1"
        if layer not in _ENCODER_LAYERS:
            raise ValueError(f"layer must be one of {tuple(_ENCODER_LAYERS)} or None, got {layer!r}")
        self.layer = layer
        self.eps, self.style_weight, self.alpha = eps, float(style_weight), float(alpha)
        self._style_cache: tuple[Tensor, list[Tensor]] | None = None
        self.encoder = VGGFeatures(_ENCODER_LAYERS[layer], loaded)
        self.decoder = AdaINDecoder(layer, decoder_width, decoder_padding)

    def encode(self, image: Tensor) -> list[Tensor]:
        """The encoder's features relu1_1, relu2_1, relu3_1 (, relu4_1), finest first."""
        return list(self.encoder(image).values())

    def _target(self, content_feats: list[Tensor], style_feats: list[Tensor], alpha: float) -> Tensor:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        content_last = content_feats[-1]
        t = adain(content_last, style_feats[-1], self.eps)
        return t if alpha == 1.0 else alpha * t + (1.0 - alpha) * content_last

    @staticmethod
    def _sizes(feats: list[Tensor]) -> list[tuple[int, int]]:
        return [tuple(f.shape[-2:]) for f in feats[:-1]]

    def _style_features(self, style: Tensor) -> list[Tensor]:
        if self.training or torch.is_grad_enabled():
            return self.encode(style)
        cached = self._style_cache
        if cached is None or cached[0] is not style:
            self._style_cache = cached = (style, self.encode(style))
        return cached[1]

    def forward(self, content: Tensor, style: Tensor | list[Tensor], alpha: float | None = None) -> Tensor:
        content_feats = self.encode(content)
        style_feats = self._style_features(style) if isinstance(style, Tensor) else style
        t = self._target(content_feats, style_feats, self.alpha if alpha is None else alpha)
        return self.decoder(t, self._sizes(content_feats)).clamp(0.0, 1.0)

    def training_losses(self, content: Tensor, style: Tensor, alpha: float = 1.0) -> dict[str, Tensor]:
        """One training evaluation: ``{"output": g(t) (unclamped), "content": L_c, "style": L_s,
        "total": L_c + λ L_s}``."""
        content_feats = self.encode(content)
        with torch.no_grad():
            style_feats = self.encode(style)
            t = self._target(content_feats, style_feats, alpha)
        output = self.decoder(t, self._sizes(content_feats))
        output_feats = self.encode(output)
        content_loss = adain_content_loss(output_feats[-1], t)
        style_loss = adain_style_loss(output_feats, style_feats, self.eps)
        return {
            "output": output,
            "content": content_loss,
            "style": style_loss,
            "total": content_loss + self.style_weight * style_loss,
        }
