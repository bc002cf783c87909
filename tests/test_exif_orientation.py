"""Phone photos: every loader returns images upright (EXIF orientation 0x0112 applied), ``read_info`` reports
the displayed size from the header, and ``stage=predict`` writes an upright output named after its input.

Files are written with their pixels stored turned (numpy ``rot90`` / flips, independent of the loader's
table) and tagged with the orientation that turns them back, as a phone camera does.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.folders import ImageFolder, ImageMaskFolder, PairedImageFolder
from datamodules.io import DataError, check_image_size, load_image, load_mask, read_info
from framework.errors import UserError
from framework.runner import run
from models.espcn import BicubicUpsampler

H, W = 24, 40  # the upright (displayed) size
ORIENTATION = 0x0112


def upright_pattern() -> np.ndarray:
    """(H, W, 3) uint8, different under every flip / rotation: a red ramp left to right, a green ramp top to
    bottom, a bright blue block in the top-left corner. Smooth and 8×8-block aligned, so JPEG keeps it."""
    y, x = np.mgrid[0:H, 0:W]
    image = np.stack([x * 255 // (W - 1), y * 255 // (H - 1), np.full_like(x, 40)], axis=-1)
    image[:8, :16, 2] = 230
    return image.astype(np.uint8)


def stored(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for ``upright`` under EXIF ``orientation`` (EXIF 2.3, tag 0x0112: where the
    stored 0th row / 0th column lie in the displayed image)."""
    return np.ascontiguousarray(
        {
            1: lambda a: a,
            2: np.fliplr,  # 0th row top, 0th column right
            3: lambda a: np.rot90(a, 2),  # 0th row bottom, 0th column right
            4: np.flipud,  # 0th row bottom, 0th column left
            5: lambda a: a.swapaxes(0, 1),  # 0th row left, 0th column top
            6: lambda a: np.rot90(a, 1),  # 0th row right, 0th column top (phone held upright)
            7: lambda a: np.rot90(a, 2).swapaxes(0, 1),  # 0th row right, 0th column bottom
            8: lambda a: np.rot90(a, -1),  # 0th row left, 0th column bottom
        }[orientation](upright)
    )


def exif(orientation: int | None) -> bytes:
    tags = Image.Exif()
    if orientation is not None:
        tags[ORIENTATION] = orientation
    return tags.tobytes()


def save(pixels: np.ndarray | Image.Image, path: Path, orientation: int | None, **options) -> Path:
    """Save ``pixels`` (stored as they are) to ``path`` tagged with ``orientation`` (None: no tag)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    if path.suffix in (".tif", ".tiff"):
        image.save(path, tiffinfo={} if orientation is None else {ORIENTATION: orientation}, **options)
    else:
        image.save(path, exif=exif(orientation), **options)
    return path


def phone_jpeg(path: Path, orientation: int, tag: bool = True) -> Path:
    """The pattern as a phone stores it for ``orientation`` (``tag=False``: the same file without the tag)."""
    pixels = stored(upright_pattern(), orientation)
    return save(pixels, path, orientation if tag else None, quality=95, subsampling=0)


def to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array).permute(2, 0, 1).float() / 255


def as_upright(image: torch.Tensor, orientation: int) -> torch.Tensor:
    """Undo :func:`stored` on a (C, h, w) tensor of the stored pixels."""
    undo = {
        1: lambda t: t,
        2: lambda t: t.flip(-1),
        3: lambda t: t.rot90(2, (-2, -1)),
        4: lambda t: t.flip(-2),
        5: lambda t: t.transpose(-2, -1),
        6: lambda t: t.rot90(-1, (-2, -1)),
        7: lambda t: t.transpose(-2, -1).rot90(2, (-2, -1)),
        8: lambda t: t.rot90(1, (-2, -1)),
    }
    return undo[orientation](image)


# -- read_info / load_image -------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_phone_jpeg_loads_upright(tmp_path, orientation):
    path = phone_jpeg(tmp_path / "photo.jpg", orientation)
    info = read_info(path)
    assert (info.width, info.height, info.orientation) == (W, H, orientation)
    image = load_image(path)
    assert image.shape == (3, H, W)
    reference = to_tensor(upright_pattern())
    error = (image - reference).abs()
    assert error.mean() < 1.5 / 255 and error.max() < 16 / 255  # JPEG; a turned image is off by ~0.4
    # exactly the stored decode, turned: the JPEG's pixels themselves are untouched
    plain = save(
        stored(upright_pattern(), orientation), tmp_path / "plain.jpg", None, quality=95, subsampling=0
    )
    torch.testing.assert_close(image, as_upright(load_image(plain), orientation), atol=0, rtol=0)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_of_a_png(tmp_path, orientation):
    path = save(stored(upright_pattern(), orientation), tmp_path / "photo.png", orientation)
    assert read_info(path).size == (H, W)
    torch.testing.assert_close(load_image(path), to_tensor(upright_pattern()), atol=0, rtol=0)


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_an_invalid_orientation_is_ignored(tmp_path, orientation):
    path = save(upright_pattern(), tmp_path / "photo.jpg", orientation, quality=95)
    info = read_info(path)
    assert (info.size, info.orientation) == ((H, W), 1)
    assert load_image(path).shape == (3, H, W)


@pytest.mark.filterwarnings("ignore:Corrupt EXIF data")
@pytest.mark.parametrize(
    "blob", [b"ZZ\x00\x2a\x00\x00\x00\x08", b"MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12"]
)
def test_malformed_exif_is_ignored(tmp_path, blob):
    path = tmp_path / "photo.jpg"
    Image.fromarray(upright_pattern()).save(path, exif=b"Exif\x00\x00" + blob, quality=95)
    info = read_info(path)
    assert (info.size, info.orientation) == ((H, W), 1)
    assert load_image(path).shape == (3, H, W)


def test_exif_that_pillow_cannot_parse_is_ignored_with_a_warning(tmp_path, monkeypatch, caplog):
    path = phone_jpeg(tmp_path / "photo.jpg", 6)

    def broken(image: Image.Image) -> Image.Exif:
        raise SyntaxError("not a TIFF file")

    monkeypatch.setattr(Image.Image, "getexif", broken)
    with caplog.at_level(logging.WARNING):
        assert read_info(path).orientation == 1
        assert load_image(path).shape == (3, W, H)  # as stored: the tag could not be read
    assert f"image '{path}': EXIF unreadable (not a TIFF file), its orientation is ignored" in caplog.text


def test_read_info_reads_the_header_only(tmp_path):
    """A photo cut after its header: read_info still answers (nothing decoded), load_image names the file."""
    path = phone_jpeg(tmp_path / "photo.jpg", 6)
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"\xff\xda") + 40])  # up to the first scan's start
    assert read_info(path).size == (H, W)
    with pytest.raises(DataError, match="corrupt or truncated"):
        load_image(path)
    # a PNG without EXIF: Pillow's PngImageFile.getexif would decode the pixels looking for an eXIf chunk
    png = tmp_path / "noisy.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(png)
    png.write_bytes(png.read_bytes()[:2000])
    assert read_info(png).size == (64, 64)


def test_size_limit_names_the_displayed_size(tmp_path):
    path = phone_jpeg(tmp_path / "photo.jpg", 6)
    with pytest.raises(DataError, match=f"is {W}×{H} "):
        check_image_size(read_info(path), max_pixels=100)
    with pytest.raises(DataError, match=f"is {W}×{H} "):
        load_image(path, max_pixels=100)


# -- modes keep converting as before ------------------------------------------------------------------------
def modes(upright: np.ndarray, orientation: int) -> dict[str, Image.Image]:
    turned = Image.fromarray(stored(upright, orientation))
    gray = np.asarray(turned.convert("L")).astype(np.uint16) * 257
    alpha = np.linspace(0, 255, gray.size).reshape(gray.shape).astype(np.uint8)
    rgba = np.dstack([np.asarray(turned), alpha])
    return {
        "cmyk.jpg": turned.convert("CMYK"),
        "16bit.png": Image.fromarray(gray).convert("I;16"),
        "palette.png": turned.convert("P", palette=Image.Palette.ADAPTIVE, colors=16),
        "gray.png": turned.convert("L"),
        "rgba.png": Image.fromarray(rgba, "RGBA"),
        "16bit.tif": Image.fromarray(gray).convert("I;16"),  # uncompressed, one band: Pillow memory-maps it
        "gray_lzw.tif": turned.convert("L"),
        "rgb.tif": turned,
    }


@pytest.mark.parametrize("orientation", [6, 3])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_modes_convert_as_before_and_come_out_upright(tmp_path, orientation, mode):
    """CMYK JPEG, 16-bit PNG / TIFF, palette, gray, RGBA: the tagged file loads as the untagged one (today's
    conversion), turned upright. (Pillow orients TIFF itself; the loader must not turn it twice.)"""
    for name, image in modes(upright_pattern(), orientation).items():
        options = {"compression": "tiff_lzw"} if "lzw" in name else {}
        tagged = save(image, tmp_path / "tagged" / name, orientation, **options)
        plain = save(image, tmp_path / "plain" / name, None, **options)
        info = read_info(tagged)
        assert (info.size, info.mode, info.orientation) == ((H, W), image.mode, orientation), name
        expected = as_upright(load_image(plain, mode), orientation)
        torch.testing.assert_close(load_image(tagged, mode), expected, atol=0, rtol=0, msg=name)


def test_16bit_png_keeps_its_scaling(tmp_path):
    gray = np.asarray(Image.fromarray(upright_pattern()).convert("L")).astype(np.uint16) * 257
    path = save(Image.fromarray(stored(gray, 6)).convert("I;16"), tmp_path / "deep.png", 6)
    torch.testing.assert_close(
        load_image(path, "L")[0], torch.from_numpy(gray / 65535).float(), atol=1e-6, rtol=0
    )


# -- data sets compare displayed sizes --------------------------------------------------------------------
def label_mask(orientation: int = 1) -> np.ndarray:
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[:8, :16] = 1  # the blue block
    mask[-4:, -4:] = 2
    return stored(mask, orientation)


def test_image_mask_folder_pairs_a_phone_photo_with_an_upright_mask(tmp_path):
    phone_jpeg(tmp_path / "images" / "a.jpg", 6)
    save(label_mask(), tmp_path / "masks" / "a.png", None)
    data = ImageMaskFolder(tmp_path / "images", tmp_path / "masks", num_classes=3)
    item = data[0]
    assert item["input"].shape == (3, H, W) and item["target"].shape == (H, W)
    torch.testing.assert_close(item["target"], torch.from_numpy(label_mask()).long())
    assert float(item["input"][2, :8, :16].mean()) > 0.8  # the blue block lies under the mask's class 1

    # a mask of the stored (sideways) size is refused, naming the displayed sizes
    save(stored(label_mask(), 6), tmp_path / "sideways" / "a.png", None)
    with pytest.raises(DataError, match=f"is {H}×{W} but its image .* is {W}×{H}"):
        ImageMaskFolder(tmp_path / "images", tmp_path / "sideways")


def test_a_tagged_mask_loads_upright(tmp_path):
    path = save(label_mask(8), tmp_path / "mask.png", 8)
    assert read_info(path).size == (H, W)
    torch.testing.assert_close(load_mask(path), torch.from_numpy(label_mask()).long())


def test_paired_and_plain_folders_use_the_displayed_size(tmp_path):
    phone_jpeg(tmp_path / "inputs" / "a.jpg", 8)
    target = np.asarray(Image.fromarray(upright_pattern()).resize((2 * W, 2 * H)))
    save(target, tmp_path / "targets" / "a.png", None)
    item = PairedImageFolder(tmp_path / "inputs", tmp_path / "targets", scale=2)[0]
    assert item["input"].shape == (3, H, W) and item["target"].shape == (3, 2 * H, 2 * W)
    assert ImageFolder(tmp_path / "inputs")[0]["input"].shape == (3, H, W)


# -- stage=predict -----------------------------------------------------------------------------------------
def test_super_resolution_predict_upscales_a_phone_photo_upright(make_cfg, tmp_path):
    photos = tmp_path / "photos"
    phone_jpeg(photos / "IMG_0001.jpg", 6)
    save(stored(upright_pattern(), 3), photos / "IMG_0002.png", 3)
    out, scale = tmp_path / "out", 4
    run(
        make_cfg(
            "task=super_resolution",
            "stage=predict",
            f"input={photos}",
            f"output={out}",
            "model=bicubic",
            f"data.scale={scale}",
            output_dir=tmp_path / "run",
        )
    )
    assert sorted(p.name for p in out.glob("*.png")) == [
        "IMG_0001.png",
        "IMG_0001_bicubic_vs_ours.png",
        "IMG_0002.png",
        "IMG_0002_bicubic_vs_ours.png",
    ]
    plain = phone_jpeg(tmp_path / "plain.jpg", 6, tag=False)
    references = {
        "IMG_0001": as_upright(load_image(plain), 6),  # the very pixels of the JPEG, turned upright
        "IMG_0002": to_tensor(upright_pattern()),
    }
    for name, upright in references.items():
        with Image.open(out / f"{name}.png") as written:
            assert written.getexif().get(ORIENTATION) is None  # upright pixels, no tag to turn them again
        result = load_image(out / f"{name}.png")
        assert result.shape == (3, scale * H, scale * W)
        expected = BicubicUpsampler(scale)(upright[None])[0].clamp(0, 1)
        torch.testing.assert_close(result, expected, atol=1 / 255 + 1e-6, rtol=0)  # 8-bit PNG rounding


def test_predict_refuses_two_inputs_with_one_name(make_cfg, tmp_path):
    """``IMG_0001.jpg`` and ``IMG_0001.png`` would both be written to ``IMG_0001.png``: refused, not lost."""
    photos = tmp_path / "photos"
    phone_jpeg(photos / "IMG_0001.jpg", 6)
    save(upright_pattern(), photos / "IMG_0001.png", None)
    out = tmp_path / "out"
    cfg = make_cfg(
        "task=super_resolution",
        "stage=predict",
        f"input={photos}",
        f"output={out}",
        "model=bicubic",
        output_dir=tmp_path / "run",
    )
    with pytest.raises(UserError) as error:
        run(cfg)
    message = str(error.value)
    assert "\n" not in message and "two inputs have the name 'IMG_0001'" in message
    assert f"'{out / 'IMG_0001'}.png'; rename one" in message
