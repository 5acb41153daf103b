"""Serving entry points packaged by preprocess for the SageMaker scikit-learn image (featurizer, label decoder)."""
