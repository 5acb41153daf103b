"""SageMaker, offline: request validation, jobs as local processes, endpoints as local servers.

exceptions.py  API errors named after AWS error codes, rendered as Step Functions reports them
validation.py  requests checked against botocore's SageMaker service model
images.py      image URI -> local twin (XGBoost, scikit-learn, CDK image assets)
runner.py      launches a job's process in its /opt/ml-shaped folder
jobs.py        SageMakerBackend: processing and training jobs, the API entry point ``call``
tuning.py      hyperparameter tuning jobs on optuna
hosting.py     models, endpoint configs, endpoints, model packages
transform.py   batch transform jobs
"""
