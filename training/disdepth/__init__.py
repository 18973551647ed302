"""DisDepth training library (arXiv 2404.16386)."""
