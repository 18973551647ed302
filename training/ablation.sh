#!/usr/bin/env bash
# DisDepth ablation rows (arXiv 2404.16386 section 4.3), one switch per contribution, paper scale.
# Every row is "ours with contributions turned off": the same config, one key changed.
#   training/ablation.sh [kitti|nyu] [extra section.key=value ...]     (runs the rows one after another)
# Set NPROC=<GPUs per node> to launch each row with torchrun. The synthetic CPU version of this table
# is bench/bench_distill.py (bench/results/ablation.json stores its exact command per row).
set -euo pipefail
dataset=${1:-kitti}
shift || true
config=config/training/disdepth_r18_${dataset}_24e.yaml
run() {
  local name=$1; shift
  if [ -n "${NPROC:-}" ]; then
    torchrun --nproc_per_node="$NPROC" training/distill.py --config "$config" "output_dir=runs/ablation_${dataset}/${name}" "$@"
  else
    python training/distill.py --config "$config" "output_dir=runs/ablation_${dataset}/${name}" "$@"
  fi
}
run student_baseline  model.lgconv.enabled=false distill.enabled=false "$@"
run plus_lgconv       distill.enabled=false "$@"
run plus_feature_kd   distill.ghost_decoder=false distill.attention=uniform "$@"
run plus_ghost        distill.attention=uniform "$@"
run disdepth_full     "$@"
run full_plain_head   model.head=plain "$@"
run full_no_warmup    distill.warmup_epochs=0 "$@"
