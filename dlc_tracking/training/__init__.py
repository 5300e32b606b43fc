"""Model lifecycle in plain Python (no Dagster): training parameters, labeled-data checks,
DeepLabCut's own ``create_training_dataset`` / ``train_network`` / ``evaluate_network`` /
``merge_datasets``, model version names and their registration.

Modules
-------
errors      the errors a user meets (each names the file or the model)
params      training parameters: defaults, validation, hash
projects    reading a project's config, copying a project, the tiny-model cache guard
datasets    labeled-data checks, the next free shuffle, create_training_dataset
train       train_network with progress per epoch and losses read back per epoch
evaluate    evaluate_network parsed into per-body-part RMSE rows per snapshot
merge       refinement checks and merge_datasets
versions    version names, training plans, registering a trained version
runs        one training plan end to end (dataset, training, registration)
plots       losses per epoch and errors per body part, as PNG
"""
