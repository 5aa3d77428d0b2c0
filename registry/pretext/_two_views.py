# Shared by the joint-embedding pretexts (simclr, moco_v2, byol, barlow_twins, dino): how each view is drawn
# from a crop² crop (sslbench/pretext/views.py). scale: area fraction of the random resized crop; stain_scale,
# stain_shift: H and E densities scaled by U[1-a, 1+a] and shifted by U[-b, b]; blur with probability blur_p.
pretext = dict(views=dict(scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), stain_scale=0.1, stain_shift=0.01, blur_p=0.5,
                          blur_sigma=(0.1, 2.0)))
