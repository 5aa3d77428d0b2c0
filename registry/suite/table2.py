description = "Table 2: training strategies at 100 % labels, next to the MoNuSeg 2018 leaderboard"
strategies = ["scratch", "imagenet", "jigsaw", "rotnet", "colorme", "instance_aware"]
fractions = [1.0]
metrics = ["aji", "aji_plus", "pq", "dice", "f1"]
# AJI (%) exactly as printed in the paper, MoNuSeg 2018 test set.
paper = dict(metric="aji", values=dict(scratch=65.29, imagenet=65.83, jigsaw=66.68, rotnet=67.61,
                                       colorme=67.94, instance_aware=70.63))
# Top-5 MoNuSeg 2018 challenge teams (AJI %), printed beside Table 2; paper-only rows.
references = {"Navid Alemi": 67.79, "Yunzhi": 67.88, "Pku.hzq": 68.52, "BUPT.J.LI": 68.68, "CIA-Net": 69.07}
# Named on 2026-12-06, before any row on the official split: two strategies are called equivalent only
# if the 90 % interval of their paired difference lies within ±2 AJI points (under half the paper's
# 4-5 point gains; a change of arithmetic alone moves a job 0.7-3 points)
equivalence_margin = 2.0
