"""One run: data and its split, the pretraining and finetuning phases, the encoder artifact, the run
folder. ``sslbench run`` is one job through here (``pipeline.run.run_job``); ``bench`` runs its jobs
through the same phases."""
