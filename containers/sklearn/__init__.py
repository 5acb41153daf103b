"""Local twin of the SageMaker scikit-learn framework container: training (the training toolkit) and serving (script mode)."""
