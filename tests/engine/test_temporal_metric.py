"""The temporal-consistency metric ranks outputs of real consecutive Vid4 frames correctly."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data.resize import imresize
from engine.data.video_io import read_frames
from engine.train.metrics import rgb_to_y
from engine.train.temporal_metrics import TemporalReference, frame_y, temporal_error

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CITY = DATA / "video" / "city_full.mp4"
RUN = list(range(10, 17))  # 7 consecutive frames: 6 pairs of real camera motion
NOISE_SIGMA = 3.0  # 8-bit levels, ~3/255


def _quantise(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [np.clip(np.round(f), 0, 255).astype(np.uint8) for f in frames]


def _noisy(frames: list[np.ndarray], seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return _quantise([f + rng.normal(0.0, NOISE_SIGMA, f.shape) for f in frames])


def _jittered(frames: list[np.ndarray]) -> list[np.ndarray]:
    # +-2% alternating, so every pair has a 4% brightness step the truth lacks.
    return _quantise([f * (1.02 if i % 2 else 0.98) for i, f in enumerate(frames)])


def _bicubic(frames: list[np.ndarray]) -> list[np.ndarray]:
    return [imresize(imresize(f, 0.5), 2.0) for f in frames]


@pytest.fixture(scope="module")
def gt() -> list[np.ndarray]:
    # Half size (352x288) keeps the module at a few seconds; the motion stays real.
    frames = read_frames(CITY, RUN)
    return [cv2.resize(f, (352, 288), interpolation=cv2.INTER_AREA) for f in frames]


@pytest.fixture(scope="module")
def ref(gt: list[np.ndarray]) -> TemporalReference:
    return TemporalReference(gt)


@pytest.fixture(scope="module")
def static_gt(gt: list[np.ndarray]) -> list[np.ndarray]:
    return [gt[0]] * 5


def test_ground_truth_scores_zero(ref: TemporalReference, gt: list[np.ndarray]) -> None:
    score = ref.score(gt)
    print(f"copy: {score.per_pair} valid {np.round(score.valid_fraction, 3).tolist()}")
    assert len(score.per_pair) == len(RUN) - 1
    assert score.mean < 1e-6
    # Real motion, yet the forward-backward check keeps nearly every pixel.
    assert all(0.9 < v <= 1.0 for v in score.valid_fraction)


def test_per_frame_noise_scores_worse(ref: TemporalReference, gt: list[np.ndarray]) -> None:
    noisy = ref.score(_noisy(gt, seed=1)).mean
    bicubic = ref.score(_bicubic(gt)).mean
    bicubic_noisy = ref.score(_noisy(_bicubic(gt), seed=2)).mean
    print(f"noise: {noisy:.4f}; bicubic {bicubic:.4f} -> with noise {bicubic_noisy:.4f}")
    assert noisy > 1.0  # the copy is 0
    # Flicker is seen on top of any output, not only on a perfect one.
    assert bicubic_noisy > bicubic + 0.3


def test_brightness_jitter_scores_worse(ref: TemporalReference, gt: list[np.ndarray]) -> None:
    jitter = ref.score(_jittered(gt))
    bicubic = ref.score(_bicubic(gt)).mean
    bicubic_jitter = ref.score(_jittered(_bicubic(gt))).mean
    print(f"jitter: {jitter.per_pair}; bicubic {bicubic:.4f} -> with jitter {bicubic_jitter:.4f}")
    assert min(jitter.per_pair) > 1.0  # every pair carries a 4% step
    assert bicubic_jitter > bicubic + 0.5


def test_blur_is_not_rewarded(ref: TemporalReference, gt: list[np.ndarray]) -> None:
    bicubic = ref.score(_bicubic(gt)).mean
    # A tiny change common to every frame moves with the content: nearly free.
    offset = ref.score(_quantise([f + 2.0 for f in gt])).mean
    gain = ref.score(_quantise([f * 1.01 for f in gt])).mean
    print(f"bicubic {bicubic:.4f}, consistent offset +2 {offset:.4f}, gain 1.01 {gain:.4f}")
    assert bicubic > 1.0  # the truth is 0: blur never scores better
    assert offset < 0.05 and gain < 0.2
    assert bicubic > 10 * max(offset, gain)


def test_frozen_output_loses_motion(ref: TemporalReference, gt: list[np.ndarray]) -> None:
    # Perfectly stable but motionless: the change the truth has is missing.
    frozen = ref.score([gt[0]] * len(gt)).mean
    print(f"frozen first frame: {frozen:.4f}")
    assert frozen > 5.0


def test_static_scene(static_gt: list[np.ndarray]) -> None:
    ref = TemporalReference(static_gt)
    assert ref.score(static_gt).mean < 1e-6
    assert ref.valid_fractions() == [1.0] * 4
    noisy = ref.score(_noisy(static_gt, seed=3)).mean
    jitter = ref.score(_jittered(static_gt)).mean
    print(f"static: noise {noisy:.4f}, jitter {jitter:.4f}")
    assert noisy > 1.0 and jitter > 1.0


def test_static_scene_matches_hand_computation(static_gt: list[np.ndarray]) -> None:
    # Zero flow makes the warp the identity, so pair t is mean |e_{t+1} - e_t|, e = Y(out - gt).
    out = _noisy(static_gt, seed=4)
    e = [rgb_to_y(o) - rgb_to_y(g) for o, g in zip(out, static_gt, strict=True)]
    expected = [float(np.abs(e[t + 1] - e[t]).mean()) for t in range(len(e) - 1)]
    got = TemporalReference(static_gt).score(out).per_pair
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_reference_is_reusable_and_pairwise(ref: TemporalReference, gt: list[np.ndarray]) -> None:
    out = _noisy(gt, seed=5)
    whole = ref.score(out)
    assert ref.score(out) == whole  # the stored flows are not consumed
    streamed = [ref.score_pair(t, out[t], out[t + 1]) for t in range(ref.pairs)]
    np.testing.assert_allclose(streamed, whole.per_pair, rtol=1e-12)
    assert whole.mean == pytest.approx(float(np.mean(whole.per_pair)))
    one_off = temporal_error(gt, out)
    np.testing.assert_allclose(one_off.per_pair, whole.per_pair, rtol=1e-12)
    # Float frames in [0, 1] are quantised first, like PSNR: the same score.
    as_float = [o.astype(np.float32) / 255.0 for o in out]
    np.testing.assert_allclose(ref.score(as_float).per_pair, whole.per_pair, rtol=1e-6)
    assert set(whole.to_dict()) == {"per_pair", "mean", "valid_fraction"}


def test_border_is_left_out(gt: list[np.ndarray]) -> None:
    ref = TemporalReference(gt[:3], border=8)
    assert all(v < (1 - 16 / 288) for v in ref.valid_fractions())
    out = [f.copy() for f in gt[:3]]
    out[1][:8] = 0  # damage confined to the cropped border is not counted
    assert ref.score(out).mean < 1e-6


def test_bad_inputs_are_refused(ref: TemporalReference, gt: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="at least 2"):
        TemporalReference(gt[:1])
    with pytest.raises(ValueError, match="preset"):
        TemporalReference(gt[:2], preset="slowest")
    with pytest.raises(ValueError, match="border"):
        TemporalReference(gt[:2], border=200)
    with pytest.raises(ValueError, match="expected 7 output frames"):
        ref.score(gt[:3])
    with pytest.raises(ValueError, match="does not match"):
        ref.score([f[:100] for f in gt])
    with pytest.raises(ValueError, match="HxWx3"):
        frame_y(gt[0][..., 0])


def test_speed_of_a_720p_pair() -> None:
    frames = read_frames(CITY, [10, 11])
    hd = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_CUBIC) for f in frames]
    noisy = _noisy(hd, seed=6)
    start = time.perf_counter()
    ref = TemporalReference(hd)
    flows = time.perf_counter() - start
    start = time.perf_counter()
    ref.score(noisy)
    scoring = time.perf_counter() - start
    print(
        f"720p pair: flows + masks {flows * 1000:.0f} ms, scoring an output {scoring * 1000:.0f} ms"
    )
    assert flows + scoring < 5.0  # generous: the 2-core machine is shared with benchmarks
