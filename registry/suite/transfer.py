description = "Transfer: pretrain and finetune on --data, score on its own test set and on other sources' test sets"
# scratch, the paper's task, and the zoo's pick: SimCLR. The only zoo store (docs/store/cpu, the earlier
# 13-image protocol, 3 seeds) singles out no pretext: the eight pretexts' 100 % means span 1.1 AJI points
# (MoCo v2 52.3 highest, SimCLR 51.7) and no 95 % interval against scratch excludes 0 at 100 % or 10 %;
# SimCLR has the best 10 % mean (45.1) and the narrowest 10 % interval, and is the most used contrastive
# baseline. DINO and MAE are the ViT-native methods: DINO runs on the ResNets too (though at the cpu
# preset its targets stay near uniform, docs/results.md); MAE needs a patch grid, so a ResNet run leaves it
# out (bench warns) and a --backbone vit_small_patch16_224 run, into its own --out, has it.
strategies = ["scratch", "instance_aware", "simclr", "dino", "mae"]
fractions = [1.0]
metrics = ["aji", "dice"]
# Every job also scores each --transfer-test NAME=PATH set: one column per test set beside the in-domain
# one (--test-data, or the part of --data held out). Post-processing is chosen on --data's validation
# images only; nothing is chosen on any test set.
transfer = True
# Named on 2026-12-06, before any row on the official split: two strategies are called equivalent only
# if the 90 % interval of their paired difference lies within ±2 AJI points (under half the paper's
# 4-5 point gains; a change of arithmetic alone moves a job 0.7-3 points)
equivalence_margin = 2.0
