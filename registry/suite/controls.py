description = "What instance-aware pretraining teaches: the paper's task, blur-matched views, a shuffled-role control"
strategies = ["scratch", "instance_aware", "instance_aware_blur", "instance_aware_control"]
fractions = [1.0, 0.1]
metrics = ["aji"]
# Named on 2026-12-06, before any row on the official split: two strategies are called equivalent only
# if the 90 % interval of their paired difference lies within ±2 AJI points (under half the paper's
# 4-5 point gains; a change of arithmetic alone moves a job 0.7-3 points)
equivalence_margin = 2.0
