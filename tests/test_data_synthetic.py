import numpy as np
from scipy import ndimage

from sslbench.data.synthetic import Synthetic


def test_nuclei_touch_but_stay_whole():
    samples = Synthetic(num_images=6, size=128, seed=1).load()
    for sample in samples:
        labels = sample.labels
        pieces = [ndimage.label(labels[box] == k)[1] for k, box in enumerate(ndimage.find_objects(labels), 1)]
        assert pieces == [1] * labels.max(), sample.name  # no occluded fragments
        left, right = labels[:, :-1], labels[:, 1:]
        assert ((left != right) & (left > 0) & (right > 0)).any(), sample.name  # some nuclei touch


def test_images_differ_in_nucleus_size_and_density():
    samples = Synthetic(num_images=8, size=128, seed=0).load()
    sizes = [np.bincount(s.labels.ravel())[1:].mean() for s in samples]
    density = [(s.labels > 0).mean() for s in samples]
    assert max(sizes) > 1.8 * min(sizes) and max(density) > 1.5 * min(density)
    assert all(s.image.shape == (128, 128, 3) and s.image.dtype == np.uint8 for s in samples)
