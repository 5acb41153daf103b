"""SageMaker, offline: request validation, jobs as local processes, endpoints as local servers.

context.py        SageMakerContext: what the backends are given (layout, S3, image resolver, ...)
facade.py         SageMakerBackend.call: faults, validation, dispatch to the parts below
exceptions.py     API errors named after AWS error codes, built from domain values
validation.py     requests checked against botocore's SageMaker service model
listing.py        List* filters, sorting and paging
images.py         image URI -> local twin (XGBoost, scikit-learn, CDK image assets)
runner.py         launches a job's process in its /opt/ml-shaped folder
metrics.py        training metrics scraped from a job's log (MetricDefinitions)
jobs.py           processing and training jobs
tuning.py         hyperparameter tuning jobs on optuna (API and search)
hosting.py        models, endpoint configs, endpoints (lifecycle, blue/green)
registry.py       model package groups and model packages
serving.py        container -> predictor, the predictor cache, traffic routing
transform.py      batch transform jobs
invoke_server.py  the InvokeEndpoint HTTP server and its discovery
serve.py          `python -m emulator serve` (moving to emulator/cli/)
"""
