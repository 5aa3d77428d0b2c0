import numpy as np
import pytest

from sslbench.data.targets import BACKGROUND, BODY, BOUNDARY, instance_to_classes


def test_single_nucleus_has_a_one_pixel_inner_rim():
    labels = np.zeros((7, 7), np.int32)
    labels[1:6, 1:6] = 4
    classes = instance_to_classes(labels)
    expected = np.zeros((7, 7), np.uint8)
    expected[1:6, 1:6] = BOUNDARY
    expected[2:5, 2:5] = BODY
    np.testing.assert_array_equal(classes, expected)


def test_touching_nuclei_are_separated_by_boundary_on_both_sides():
    labels = np.zeros((5, 8), np.int32)
    labels[:, :4] = 1
    labels[:, 4:] = 2
    classes = instance_to_classes(labels)
    assert (classes[:, 3] == BOUNDARY).all() and (classes[:, 4] == BOUNDARY).all()
    # no body pixel of one nucleus touches a body pixel of the other, even diagonally
    body = classes == BODY
    assert not (body[:, :4].any(axis=0)[-1] or body[:, 4:].any(axis=0)[0])


def test_boundary_width_grows_inwards_and_never_into_background():
    labels = np.zeros((12, 12), np.int32)
    labels[1:11, 1:11] = 1
    classes = instance_to_classes(labels, boundary_width=3)
    assert (classes[0] == BACKGROUND).all()
    assert (classes[1:4, 1:11] == BOUNDARY).all()
    assert (classes[4:8, 4:8] == BODY).all()


def test_tiny_nucleus_is_all_boundary_and_empty_map_is_background():
    labels = np.zeros((4, 4), np.int32)
    labels[1, 1] = 9
    assert instance_to_classes(labels)[1, 1] == BOUNDARY
    assert (instance_to_classes(np.zeros((4, 4), np.int32)) == BACKGROUND).all()


def test_boundary_width_must_be_positive():
    with pytest.raises(ValueError, match="boundary_width"):
        instance_to_classes(np.zeros((3, 3), np.int32), boundary_width=0)
