"""Cross-architecture distillation: teacher, FAM, LAM, ghost decoder, task."""
