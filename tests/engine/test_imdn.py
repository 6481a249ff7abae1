"""IMDN with its authors' weights reproduces the published Set5 numbers, and loads cleanly."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from engine.data.resize import modcrop
from engine.nets.imdn import IMDN, MODELS_ENV, PROTOTYPES, default_models_dir, load_imdn
from engine.train.cost import torch_threads
from engine.train.metrics import psnr_y, to_uint8

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared/data"
SET5 = SHARED_DATA / "images/Set5"
MODELS = SHARED_DATA / "models"
# The paper's Set5 figures (Y, border = scale), measured here with these weights too.
PUBLISHED_PSNR = {2: 38.00, 3: 34.36, 4: 32.21}


def _read_rgb(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"cannot read {path} (Set5 ships with ../shared/data)"
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _require(path: Path) -> None:
    # Shared data is part of the test contract: fail loudly, never skip.
    assert path.exists(), f"test data missing: expected {path} (../shared/data)"


@pytest.mark.parametrize("scale", sorted(PUBLISHED_PSNR))
def test_reproduces_published_set5_psnr(scale: int) -> None:
    _require(MODELS / f"IMDN_x{scale}.pth")
    hr_paths = sorted((SET5 / "HR").glob("*.png"))
    assert len(hr_paths) == 5, f"Set5 HR images missing under {SET5}"
    net = load_imdn(scale)
    psnrs = []
    with torch_threads(2), torch.inference_mode():
        for hr_path in hr_paths:
            hr = modcrop(_read_rgb(hr_path), scale)
            lr = _read_rgb(SET5 / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}.png")
            x = torch.from_numpy(lr.astype(np.float32).transpose(2, 0, 1) / 255.0)[None]
            out = net(x)[0].permute(1, 2, 0).numpy()
            assert out.shape == hr.shape
            psnrs.append(psnr_y(to_uint8(out), hr, border=scale))
    mean = float(np.mean(psnrs))
    print(f"IMDN x{scale} Set5: {mean:.3f} dB ({', '.join(f'{p:.2f}' for p in psnrs)})")
    assert abs(mean - PUBLISHED_PSNR[scale]) <= 0.01


def test_state_dict_keys_match_the_authors_files() -> None:
    _require(MODELS / "IMDN_x2.pth")
    state = torch.load(MODELS / "IMDN_x2.pth", map_location="cpu", weights_only=True)
    ours = IMDN(2).state_dict()
    assert {k.removeprefix("module.") for k in state} == set(ours)
    assert sum(v.numel() for v in ours.values()) == 694_404


def test_output_is_clamped_and_upscaled() -> None:
    net = load_imdn(3)
    with torch.inference_mode():
        out = net(torch.rand(1, 3, 10, 14) * 3 - 1)  # far outside [0, 1]
    assert out.shape == (1, 3, 30, 42)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_unsupported_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="x2, x3 and x4"):
        load_imdn(1)


def test_missing_weights_say_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        load_imdn(2, tmp_path)
    message = str(info.value)
    assert str(tmp_path / "IMDN_x2.pth") in message
    assert MODELS_ENV in message and "shared/data" in message


def test_models_dir_default_and_override(monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.delenv(MODELS_ENV, raising=False)
    assert default_models_dir() == MODELS.resolve()
    monkeypatch.setenv(MODELS_ENV, str(tmp_path))
    assert default_models_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        load_imdn(4)


def test_registered_as_a_prototype() -> None:
    assert "imdn" in PROTOTYPES
    assert isinstance(PROTOTYPES.get("imdn")(2), IMDN)
