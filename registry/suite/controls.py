description = "What instance-aware pretraining teaches: the paper's task, blur-matched views, a shuffled-role control"
strategies = ["scratch", "instance_aware", "instance_aware_blur", "instance_aware_control"]
fractions = [1.0, 0.1]
metrics = ["aji"]
