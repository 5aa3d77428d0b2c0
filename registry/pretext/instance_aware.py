description = "Xie et al. 2020: scale-wise triplet (L_ST) + count ranking (L_CR) — the paper's method"
label = "SSL (Ours): L_ST + L_CR"
# Paper sizes: 768² anchor/positive from 1000² images, negatives from a {512, 256, 128, 64} pool.
# normalize_embedding: L2-normalised z (FaceNet; ours), False for the paper's unnormalised z.
pretext = dict(type="InstanceAware", crop=768, neg_scales=(512, 256, 128, 64), embed_dim=128,
               margin_st=1.0, margin_cr=1.0, use_st=True, use_cr=True, normalize_embedding=True)
