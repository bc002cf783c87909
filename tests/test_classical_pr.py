"""Classical iterative phase retrieval (ER / HIO / RAAR) on toy images."""

from __future__ import annotations

import pytest
import torch

from algorithms.phase_retrieval import (
    ClassicalPhaseRetrieval,
    average_aligned,
    error_reduction,
    iterate,
    magnitude_residual,
    project_magnitude,
    project_object,
    random_phase_init,
    shrinkwrap_support,
)
from operators.fourier import FourierMagnitude, fourier_magnitude, pad_image, support_mask

N, PAD = 16, 8


pytestmark = pytest.mark.usefixtures("single_thread")


def toy_images(b: int = 4, n: int = N, seed: int = 0) -> torch.Tensor:
    """Gaussian blob + off-centre rectangle (no 180-degree symmetry), values in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(n) + 0.5, torch.arange(n) + 0.5, indexing="ij")
    imgs = []
    for _ in range(b):
        c = torch.rand(2, generator=g) * n * 0.4 + n * 0.3
        s = torch.rand(2, generator=g) * n * 0.15 + n * 0.1
        img = torch.exp(-(((yy - c[0]) / s[0]) ** 2 + ((xx - c[1]) / s[1]) ** 2))
        r0, c0 = torch.randint(1, n // 2, (2,), generator=g).tolist()
        img[r0 : r0 + n // 4, c0 : c0 + n // 5] += 0.6
        imgs.append(img.clamp(0, 1))
    return torch.stack(imgs)[:, None]


@pytest.fixture(scope="module")
def problem() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = toy_images()
    return x, FourierMagnitude(PAD)(x), support_mask(N, PAD)


def test_residual_zero_at_truth_and_projections(problem) -> None:
    x, y, support = problem
    xp = pad_image(x, PAD)
    assert magnitude_residual(xp, y).max() < 1e-6
    # P_M is a projection onto {|F z| = y}: magnitudes match, idempotent on real images
    z = torch.rand(xp.shape, generator=torch.Generator().manual_seed(1))
    u = project_magnitude(z, y)
    assert torch.allclose(project_magnitude(xp, y), xp, atol=1e-5)
    assert magnitude_residual(u, y).max() < 0.9  # real part of a projection: close, not exact
    # P_S zeroes outside the support and negatives
    p = project_object(z - 0.5, support)
    assert (p >= 0).all() and p[..., ~support].abs().sum() == 0


def test_upper_bound_projection_and_updates_without_it(problem) -> None:
    _, y, support = problem
    z = torch.randn(y.shape, generator=torch.Generator().manual_seed(2))
    boxed = project_object(z, support, upper=1.0)
    assert boxed.min() >= 0 and boxed.max() <= 1 and boxed[..., ~support].abs().sum() == 0
    inside = support & (z >= 0) & (z <= 1)
    assert torch.equal(boxed[..., inside], z[..., inside])  # feasible pixels untouched (a projection)
    # without the bound, HIO and RAAR are Fienup's and Luke's pointwise updates
    x = random_phase_init(y, support, torch.Generator().manual_seed(4))
    u = project_magnitude(x, y)
    feasible = support & (u >= 0)
    torch.testing.assert_close(iterate("hio", x, y, support, 1, 0.9), torch.where(feasible, u, x - 0.9 * u))
    feasible = support & (2 * u - x >= 0)
    expected = torch.where(feasible, u, 0.87 * x + (1 - 2 * 0.87) * u)
    torch.testing.assert_close(iterate("raar", x, y, support, 1, 0.87), expected)


def test_upper_bound_keeps_the_read_out_in_range_and_converges(problem) -> None:
    _, y, support = problem
    x = random_phase_init(y, support, torch.Generator().manual_seed(0), upper=1.0)
    r0 = magnitude_residual(x, y)
    x = error_reduction(iterate("hio", x, y, support, 60, upper=1.0), y, support, 10, upper=1.0)
    assert x.min() >= 0 and x.max() <= 1
    assert (magnitude_residual(x, y) < r0 / 10).all()


@pytest.mark.parametrize("method", ["hio", "raar"])
def test_hio_raar_reduce_residual_a_lot(problem, method: str) -> None:
    _, y, support = problem
    x0 = random_phase_init(y, support, torch.Generator().manual_seed(0))
    r0 = magnitude_residual(x0, y)
    x = error_reduction(iterate(method, x0, y, support, 60), y, support, 10)
    r = magnitude_residual(x, y)
    assert (r0 > 0.5).all()
    assert (r < r0 / 10).all(), (r0, r)


def test_er_never_increases_residual_much(problem) -> None:
    _, y, support = problem
    x = random_phase_init(y, support, torch.Generator().manual_seed(3))
    history = [magnitude_residual(x, y)]
    for _ in range(15):
        x = error_reduction(x, y, support, 4)
        history.append(magnitude_residual(x, y))
    h = torch.stack(history)  # (21, B)
    assert (h[1:] <= h[:-1] * 1.01 + 1e-6).all()
    assert (h[-1] < 0.5 * h[0]).all()


def test_module_shape_range_and_no_parameters(problem) -> None:
    x, y, _ = problem
    pr = ClassicalPhaseRetrieval(
        "hio", image_size=N, pad=PAD, iterations=60, restarts=2, final_er_iterations=10
    )
    out = pr(y)
    assert out.shape == x.shape
    assert out.min() >= 0 and out.max() <= 1
    assert list(pr.parameters()) == [] and pr.state_dict() == {}
    assert not out.requires_grad
    assert magnitude_residual(pad_image(out, PAD), y).max() < 0.1


def test_module_is_reproducible_under_seed(problem) -> None:
    _, y, _ = problem
    kwargs = {"image_size": N, "pad": PAD, "iterations": 20, "restarts": 2, "final_er_iterations": 5}
    a = ClassicalPhaseRetrieval("raar", seed=7, **kwargs)(y)
    b = ClassicalPhaseRetrieval("raar", seed=7, **kwargs)(y)
    c = ClassicalPhaseRetrieval("raar", seed=8, **kwargs)(y)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_x0_initialisation_and_best_restart_selection(problem) -> None:
    x, y, _ = problem
    # restart 0 starts at the truth (a fixed point of ER), restarts 1-2 are random with 1 ER step:
    # the selection must keep restart 0 for every sample
    pr = ClassicalPhaseRetrieval("er", image_size=N, pad=PAD, iterations=0, restarts=3, final_er_iterations=1)
    out = pr(y, x0=x)
    assert torch.allclose(out, x, atol=1e-4)
    random_only = pr(y)
    assert (magnitude_residual(pad_image(random_only, PAD), y) > 0.1).all()


def test_clamp_output_flag(problem) -> None:
    _, y, _ = problem
    kwargs = {"image_size": N, "pad": PAD, "iterations": 10, "restarts": 1, "final_er_iterations": 1}
    unclamped = ClassicalPhaseRetrieval("hio", clamp_output=False, **kwargs)(2.0 * y)
    assert unclamped.max() > 1.0
    assert ClassicalPhaseRetrieval("hio", **kwargs)(2.0 * y).max() <= 1.0


def test_invalid_arguments(problem) -> None:
    _, y, _ = problem
    with pytest.raises(ValueError, match="hio"):
        ClassicalPhaseRetrieval("gs")
    with pytest.raises(ValueError, match="restarts"):
        ClassicalPhaseRetrieval(restarts=0)
    with pytest.raises(ValueError, match="shape"):
        ClassicalPhaseRetrieval(image_size=N, pad=4)(y)
    with pytest.raises(ValueError, match="x0"):
        ClassicalPhaseRetrieval(image_size=N, pad=PAD)(y, x0=torch.zeros(1, 1, N, N))
    with pytest.raises(ValueError, match="method"):
        iterate("gs", y, y, support_mask(N, PAD), 1)


def test_magnitude_residual_is_relative() -> None:
    xp = pad_image(toy_images(b=2), PAD)
    y = fourier_magnitude(xp)
    assert torch.allclose(magnitude_residual(torch.zeros_like(xp), y), torch.ones(2))
    assert torch.allclose(magnitude_residual(2 * xp, y), torch.ones(2), atol=1e-5)


def test_shrinkwrap_support_finds_the_object_inside_the_box(problem) -> None:
    x, _, box = problem
    estimate = pad_image(x, PAD)
    support = shrinkwrap_support(estimate, box, sigma=1.5, threshold=0.1)
    assert support.shape == estimate.shape and not (support & ~box).any()  # never leaves the known box
    assert (support | (estimate < 0.2)).all()  # every clearly visible object pixel is kept
    assert support.flatten(1).sum(1).max() < box.sum()  # tighter than the box


def test_shrinkwrap_hio_runs_and_fits_the_magnitudes(problem) -> None:
    x, y, _ = problem
    kwargs = {"image_size": N, "pad": PAD, "iterations": 60, "restarts": 2, "final_er_iterations": 10}
    out = ClassicalPhaseRetrieval("hio", shrinkwrap_every=10, **kwargs)(y)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert magnitude_residual(pad_image(out, PAD), y).max() < 0.15
    with pytest.raises(ValueError, match="shrinkwrap"):
        ClassicalPhaseRetrieval(shrinkwrap_every=-1)


def test_average_aligned_turns_twins_before_averaging(problem) -> None:
    x, y, _ = problem
    padded = pad_image(x, PAD)  # (B, 1, m, m)
    twin = torch.flip(padded, dims=(-2, -1))  # same magnitudes
    estimates = torch.stack([padded, twin, padded + 0.1])  # (R=3, B, 1, m, m)
    residual = torch.tensor([0.0, 0.1, 0.2])[:, None].expand(3, x.shape[0])
    torch.testing.assert_close(average_aligned(estimates, residual, padded, 2), padded)  # the twin is turned
    torch.testing.assert_close(average_aligned(estimates, residual, padded, 3), padded + 0.1 / 3)
    kwargs = {"image_size": N, "pad": PAD, "iterations": 20, "restarts": 3, "final_er_iterations": 5}
    averaged = ClassicalPhaseRetrieval("hio", average_best=3, **kwargs)(y)
    assert averaged.shape == x.shape and not torch.equal(
        averaged, ClassicalPhaseRetrieval("hio", **kwargs)(y)
    )
    with pytest.raises(ValueError, match="average_best"):
        ClassicalPhaseRetrieval(average_best=0)
