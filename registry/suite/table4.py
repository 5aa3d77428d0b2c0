description = "Table 4: k-fold cross-validation on a labelled folder dataset (paper: CPM, 5 folds)"
strategies = ["scratch", "instance_aware"]
fractions = [1.0]
# Fold i is the test set; the other folds are split 80:20 train/val. Pretraining runs once per
# (strategy, seed, fold) on every image outside fold i, so no test image is seen even unlabelled
# (the paper does not say how it pretrained for CPM; this is the protocol that cannot leak).
folds = 5
metrics = ["dice", "aji"]
# Dice and AJI (%) exactly as printed in the paper, CPM dataset: Fold 1..5, then their average.
paper = [dict(metric="dice", values=dict(scratch=[85.29, 83.99, 84.12, 82.89, 86.05, 84.47],
                                         instance_aware=[86.54, 85.18, 85.84, 86.08, 88.14, 86.36])),
         dict(metric="aji", values=dict(scratch=[74.43, 72.79, 72.80, 71.03, 75.60, 73.33],
                                        instance_aware=[76.34, 74.56, 75.37, 75.84, 78.83, 76.19]))]
