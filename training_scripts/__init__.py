"""Script-mode entry points the scikit-learn framework image runs (one folder per model family)."""
