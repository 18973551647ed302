"""Run logging on rank 0: ``metrics.jsonl``, TensorBoard scalars and depth previews, a tqdm bar.

File contract from docs/design.md section 3.

    output_dir/metrics.jsonl   one JSON object per logged step: step, epoch, lr, loss terms by name, and
                               'diagnostics': {name: value} (disdepth.distill.diagnostics) where there are any
    output_dir/val.jsonl       one JSON object per validation: step and the standard metrics
    output_dir/tensorboard/    the same scalars (train/, diagnostics/, val/) + preview images (input |
                               prediction | ground truth; input | LAM attention per scale)

On ``--resume`` the JSONL files are cut back to the checkpoint's step, so the curve continues
without the steps a killed run logged after its last checkpoint.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm


def _truncate_jsonl(path: Path, max_step: int) -> None:
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get('step', 0) <= max_step]
    path.write_text(''.join(line + '\n' for line in keep))


def _inverse_depth_image(depth: torch.Tensor, max_depth: float) -> torch.Tensor:
    """[B,1,H,W] metres -> [B,1,H,W] in 0..1, near = bright (0 depth = invalid = black)."""
    inv = torch.where(depth > 0, 1.0 / depth.clamp_min(1e-3), torch.zeros_like(depth))
    return (inv / max(inv.amax().item(), 1.0 / max_depth)).clamp(0, 1)


class RunLogger:
    """No-op on ranks other than 0. ``start_step``: resume point (0 for a fresh run)."""

    def __init__(self, out_dir: Path, is_main: bool, start_step: int, total_steps: int, progress: bool):
        self.is_main = is_main
        if not is_main:
            return
        self.metrics_path, self.val_path = out_dir / 'metrics.jsonl', out_dir / 'val.jsonl'
        for path in (self.metrics_path, self.val_path):
            if start_step == 0:
                path.unlink(missing_ok=True)
            else:
                _truncate_jsonl(path, start_step)
        self.writer = SummaryWriter(str(out_dir / 'tensorboard'), purge_step=start_step or None)
        self.bar = tqdm(total=total_steps, initial=start_step, disable=not progress, dynamic_ncols=True)

    def step(self) -> None:
        if self.is_main:
            self.bar.update(1)

    def log(self, step: int, record: dict, diagnostics: dict | None = None) -> None:
        """Append ``{'step': step, **record, 'diagnostics': diagnostics}`` (floats; no 'diagnostics' key when
        there are none) to metrics.jsonl; TensorBoard gets ``record`` under train/, diagnostics under diagnostics/."""
        if not self.is_main:
            return
        diagnostics = diagnostics or {}
        with open(self.metrics_path, 'a') as f:
            f.write(json.dumps({'step': step, **record, **({'diagnostics': diagnostics} if diagnostics else {})})
                    + '\n')
        for name, value in record.items():
            self.writer.add_scalar(f'train/{name}', value, step)
        for name, value in diagnostics.items():
            self.writer.add_scalar(f'diagnostics/{name}', value, step)
        self.bar.set_postfix(loss=f"{record.get('loss', float('nan')):.3f}", refresh=False)

    def log_val(self, step: int, metrics: dict) -> None:
        if not self.is_main:
            return
        with open(self.val_path, 'a') as f:
            f.write(json.dumps({'step': step, **metrics}) + '\n')
        for name, value in metrics.items():
            self.writer.add_scalar(f'val/{name}', value, step)
        self.bar.write(f"step {step}: " + ' '.join(f'{k}={v:.4g}' for k, v in metrics.items()))

    def preview(self, step: int, image: torch.Tensor, pred: torch.Tensor, gt: torch.Tensor,
                max_depth: float) -> None:
        """image [B,3,H,W] 0..1, pred/gt [B,1,H,W] metres: the first two samples, stacked vertically."""
        if not self.is_main:
            return
        n = min(2, image.shape[0])
        rows = [image[:n].float(), _inverse_depth_image(pred[:n].detach().float(), max_depth).expand(-1, 3, -1, -1),
                _inverse_depth_image(gt[:n].float(), max_depth).expand(-1, 3, -1, -1)]
        self.writer.add_images('preview/image_pred_gt', torch.cat(rows, dim=2).cpu(), step)

    def preview_attention(self, step: int, image: torch.Tensor, attention: list[torch.Tensor]) -> None:
        """image [B,3,H,W] 0..1 above LAM's A_l [B,1,H_l,W_l] per scale (nearest-upsampled, each divided by
        its image's max, so bright = where the scale's attention peaks): the first two samples."""
        if not self.is_main:
            return
        n = min(2, image.shape[0])
        rows = [image[:n].float()]
        for a in attention:
            a = torch.nn.functional.interpolate(a[:n].float(), size=image.shape[-2:], mode='nearest')
            rows.append((a / a.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-12)).expand(-1, 3, -1, -1))
        self.writer.add_images('preview/image_lam_attention', torch.cat(rows, dim=2).cpu(), step)

    def close(self) -> None:
        if self.is_main:
            self.bar.close()
            self.writer.close()
