"""Local twin of the SageMaker scikit-learn framework container's serving side (script mode)."""
