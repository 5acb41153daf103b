"""Local twin of SageMaker's built-in XGBoost algorithm (image 3.0-5): train and serve."""
