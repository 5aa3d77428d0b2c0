_base_ = "./_two_views.py"
description = "Caron et al. 2021 (DINO): match a momentum teacher's centred, sharpened output on the other view"
label = "DINO"
# The paper's head (hidden 2048, bottleneck 256, K = 65,536 prototypes) and temperatures: student 0.1,
# teacher 0.04 -> 0.07 over the first 30 % of steps; center momentum 0.9; teacher momentum 0.996 -> 1
# (cosine). On a ResNet-34 the head holds 22.5 M weights, its step (with AdamW and the teacher's update)
# 0.5 s on one CPU thread; --set pretext.prototypes=4096: 6.8 M, 0.07 s. Two global views, no multi-crop:
# views over the wider scale range (0.14, 1) their code recommends without local crops (pretext/dino.py).
pretext = dict(type="DINO", crop=768, hidden_dim=2048, bottleneck_dim=256, prototypes=65536, student_temperature=0.1,
               teacher_temperature=(0.04, 0.07), teacher_warmup=0.3, center_momentum=0.9, momentum=0.996,
               head_batch_norm=False,
               views=dict(scale=(0.14, 1.0)))
