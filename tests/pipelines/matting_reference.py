"""Test-only transcriptions of the references the cutout-quality metrics are checked against.

Kept literal (loops, float64, the same OpenCV calls) so that a difference from
`pipelines.metrics.matting` is ours, not the transcription's:

* mmagic (OpenMMLab), `mmagic/evaluation/functional/gaussian_funcs.py` (`gaussian`, `dgaussian`,
  `gauss_filter`, `gauss_gradient`), `mmagic/evaluation/metrics/gradient_error.py`
  (`GradientError.process`, sigma 1.4, norm 1000), `mmagic/evaluation/metrics/connectivity_error.py`
  (`ConnectivityError.process`, step 0.1, norm 1000), `.../sad.py` and `.../matting_mse.py`, with
  the inputs `_fetch_data_and_check` gives them (uint8 / 255.0 as float64). Our sets have no
  trimap, so the evaluation region (`trimap == 128`) is the whole image: the trimap is all 128.
* boundary-iou-api (bowenc0221/boundary-iou-api), `boundary_iou/utils/boundary_utils.py`
  (`mask_to_boundary`, dilation_ratio 0.02) and the Boundary IoU of two binary masks built on it.
"""

from __future__ import annotations

import cv2
import numpy as np


def gaussian(x: np.ndarray | float, sigma: float) -> np.ndarray | float:
    return np.exp(-(x**2) / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi))


def dgaussian(x: np.ndarray | float, sigma: float) -> np.ndarray | float:
    return -x * gaussian(x, sigma) / sigma**2


def gauss_filter(sigma: float, epsilon: float = 1e-2) -> tuple[np.ndarray, np.ndarray]:
    half_size = np.ceil(sigma * np.sqrt(-2 * np.log(np.sqrt(2 * np.pi) * sigma * epsilon)))
    size = int(2 * half_size + 1)
    filter_x = np.zeros((size, size))
    for i in range(size):
        for j in range(size):
            filter_x[i, j] = gaussian(i - half_size, sigma) * dgaussian(j - half_size, sigma)
    norm = np.sqrt((filter_x**2).sum())
    filter_x = filter_x / norm
    filter_y = np.transpose(filter_x)
    return filter_x, filter_y


def gauss_gradient(img: np.ndarray, sigma: float) -> np.ndarray:
    filter_x, filter_y = gauss_filter(sigma)
    img_filtered_x = cv2.filter2D(img, -1, filter_x, borderType=cv2.BORDER_REPLICATE)
    img_filtered_y = cv2.filter2D(img, -1, filter_y, borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(img_filtered_x**2 + img_filtered_y**2)  # type: ignore[no-any-return]


def _inputs(pred_u8: np.ndarray, gt_u8: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_fetch_data_and_check`: uint8 → float64 / 255; the whole image as the region."""
    trimap = np.full(gt_u8.shape, 128, np.uint8)
    return pred_u8 / 255.0, gt_u8 / 255.0, trimap


def sad(pred_u8: np.ndarray, gt_u8: np.ndarray) -> float:
    pred_alpha, gt_alpha, _ = _inputs(pred_u8, gt_u8)
    return float(np.abs(pred_alpha - gt_alpha).sum() / 1000)


def mse(pred_u8: np.ndarray, gt_u8: np.ndarray) -> float:
    pred_alpha, gt_alpha, trimap = _inputs(pred_u8, gt_u8)
    weight_sum = (trimap == 128).sum()
    return float(((pred_alpha - gt_alpha) ** 2).sum() / weight_sum)


def gradient_error(pred_u8: np.ndarray, gt_u8: np.ndarray, sigma: float = 1.4) -> float:
    pred_alpha, gt_alpha, trimap = _inputs(pred_u8, gt_u8)
    gt_alpha_normed = np.zeros_like(gt_alpha)
    pred_alpha_normed = np.zeros_like(pred_alpha)
    cv2.normalize(gt_alpha, gt_alpha_normed, 1.0, 0.0, cv2.NORM_MINMAX)
    cv2.normalize(pred_alpha, pred_alpha_normed, 1.0, 0.0, cv2.NORM_MINMAX)
    gt_alpha_grad = gauss_gradient(gt_alpha_normed, sigma)
    pred_alpha_grad = gauss_gradient(pred_alpha_normed, sigma)
    grad_loss = ((gt_alpha_grad - pred_alpha_grad) ** 2 * (trimap == 128)).sum()
    return float(grad_loss / 1000)


def connectivity_error(pred_u8: np.ndarray, gt_u8: np.ndarray, step: float = 0.1) -> float:
    pred_alpha, gt_alpha, trimap = _inputs(pred_u8, gt_u8)
    thresh_steps = np.arange(0, 1 + step, step)
    round_down_map = -np.ones_like(gt_alpha)
    for i in range(1, len(thresh_steps)):
        gt_alpha_thresh = gt_alpha >= thresh_steps[i]
        pred_alpha_thresh = pred_alpha >= thresh_steps[i]
        intersection = gt_alpha_thresh & pred_alpha_thresh
        intersection = intersection.astype(np.uint8)
        _, output, stats, _ = cv2.connectedComponentsWithStats(intersection, connectivity=4)
        size = stats[1:, -1]
        omega = np.zeros_like(gt_alpha)
        if len(size) != 0:
            max_id = np.argmax(size)
            omega[output == max_id + 1] = 1
        mask = (round_down_map == -1) & (omega == 0)
        round_down_map[mask] = thresh_steps[i - 1]
    round_down_map[round_down_map == -1] = 1
    gt_alpha_diff = gt_alpha - round_down_map
    pred_alpha_diff = pred_alpha - round_down_map
    gt_alpha_phi = 1 - gt_alpha_diff * (gt_alpha_diff >= 0.15)
    pred_alpha_phi = 1 - pred_alpha_diff * (pred_alpha_diff >= 0.15)
    connectivity_error = np.sum(np.abs(gt_alpha_phi - pred_alpha_phi) * (trimap == 128))
    return float(connectivity_error / 1000)


def mask_to_boundary(mask: np.ndarray, dilation_ratio: float = 0.02) -> np.ndarray:
    mask = mask.astype(np.uint8)
    h, w = mask.shape
    img_diag = np.sqrt(h**2 + w**2)
    dilation = int(round(dilation_ratio * img_diag))  # noqa: RUF046 (as the reference)
    if dilation < 1:
        dilation = 1
    new_mask = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    kernel = np.ones((3, 3), dtype=np.uint8)
    new_mask_erode = cv2.erode(new_mask, kernel, iterations=dilation)
    mask_erode = new_mask_erode[1 : h + 1, 1 : w + 1]
    return mask - mask_erode  # type: ignore[no-any-return]


def boundary_iou(gt: np.ndarray, dt: np.ndarray, dilation_ratio: float = 0.02) -> float:
    """The reference's Boundary IoU; both boundaries empty (0 / 0) → 1, as the contract says."""
    gt_boundary = mask_to_boundary(gt, dilation_ratio)
    dt_boundary = mask_to_boundary(dt, dilation_ratio)
    intersection = ((gt_boundary * dt_boundary) > 0).sum()
    union = ((gt_boundary + dt_boundary) > 0).sum()
    return 1.0 if union == 0 else float(intersection / union)
