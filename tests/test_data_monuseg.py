import warnings

import numpy as np
import pytest
from data_helpers import SHARED_DATA, needs_shared, save_image, square, write_monuseg

from sslbench.data.io import DataWarning, read_label_map, write_label_map
from sslbench.data.monuseg import MoNuSeg, parse_aperio_xml, rasterise
from sslbench.errors import DataError

IMAGE = np.full((10, 12, 3), 200, np.uint8)


def test_polygon_fills_pixels_whose_centre_is_inside():
    labels = rasterise([np.array(square(1.5, 2.5, 4.5, 5.5))], (10, 12))
    expected = np.zeros((10, 12), np.int32)
    expected[3:6, 2:5] = 1  # X = column, Y = row
    np.testing.assert_array_equal(labels, expected)


def test_overlap_goes_to_the_earlier_region():
    labels = rasterise([np.array(square(0.5, 0.5, 4.5, 4.5)), np.array(square(2.5, 2.5, 6.5, 6.5))], (8, 8))
    assert (labels[1:5, 1:5] == 1).all()
    assert labels[3, 3] == 1 and labels[5, 5] == 2 and (labels == 2).sum() == 16 - 4


def test_skipped_regions_and_clipping_warn_once_with_counts():
    regions = [np.array(square(0.5, 0.5, 2.5, 2.5)),
               np.array([(1.0, 1.0), (3.0, 3.0)]),  # 2 vertices
               np.array([(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]),  # collinear
               np.array(square(20.5, 20.5, 25.5, 25.5)),  # off the image
               np.array(square(0.5, 0.5, 1.5, 1.5)),  # covered by region 1
               np.array(square(-3.0, 5.5, 2.5, 7.5)),  # clipped
               np.array(square(6.5, 6.5, 7.5, 7.5))]  # kept: id 3
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = rasterise(regions, (10, 10), "a.xml")
    assert [str(w.message) for w in caught] == [
        "a.xml: 1 region(s) skipped (fewer than 3 vertices); 1 region(s) skipped (zero area); "
        "1 region(s) skipped (outside the image); 1 region(s) skipped (covered by earlier regions); "
        "1 polygon(s) extending past the 10×10 image clipped to it."]
    assert list(np.unique(labels)) == [0, 1, 2, 3]
    assert (labels[6:8, 0:3] == 2).all()


def test_xml_parse_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.xml"
    bad.write_text("<Annotations><Region><Vertex X='1' Y='2'/></Annotations>")
    with pytest.raises(DataError, match=r"bad.xml: malformed XML \(mismatched tag"):
        parse_aperio_xml(bad)
    other = tmp_path / "other.xml"
    other.write_text("<svg><path d='M0 0'/></svg>")
    with pytest.raises(DataError, match="not an Aperio ImageScope annotation"):
        parse_aperio_xml(other)
    no_y = tmp_path / "noy.xml"
    no_y.write_text('<Annotations><Region Id="7"><Vertex X="1"/></Region></Annotations>')
    with pytest.raises(DataError, match="Region Id=7 has a Vertex without numeric X and Y"):
        parse_aperio_xml(no_y)


@pytest.mark.parametrize("flat", [False, True])
def test_layouts_and_unannotated_images(tmp_path, flat):
    regions = [square(1.5, 2.5, 4.5, 5.5), square(7.5, 1.5, 9.5, 3.5)]
    write_monuseg(tmp_path, {"a": IMAGE, "b": IMAGE}, {"a": regions}, flat=flat)
    with pytest.warns(DataWarning, match=r"1 of 2 images have no annotation \(XML or label map\)"):
        samples = MoNuSeg(tmp_path).load()
    assert [s.name for s in samples] == ["a", "b"]
    assert samples[0].labels.max() == 2 and samples[0].labels.dtype == np.int32
    assert samples[1].labels is None and samples[1].image.shape == (10, 12, 3)


def test_annotation_without_nuclei_is_kept_as_labelled(tmp_path):
    write_monuseg(tmp_path, {"a": IMAGE}, {"a": []})
    with pytest.warns(DataWarning, match="no nuclei"):
        (sample,) = MoNuSeg(tmp_path).load()
    assert sample.labels is not None and not sample.labels.any()


def test_layout_errors(tmp_path):
    write_monuseg(tmp_path / "orphan", {"a": IMAGE}, {"a": [], "zz": []})
    with pytest.raises(DataError, match=r"zz.xml: annotation \(XML or label map\) has no image"):
        MoNuSeg(tmp_path / "orphan")
    dup = write_monuseg(tmp_path / "dup", {"a": IMAGE}, {})
    save_image(dup / "Tissue Images" / "a.png", IMAGE)
    with pytest.raises(DataError, match="same name 'a'"):
        MoNuSeg(dup)
    (tmp_path / "empty" / "Tissue Images").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found"):
        MoNuSeg(tmp_path / "empty")


def test_label_maps_annotate_images_without_xml_and_two_annotations_are_refused(tmp_path):
    write_monuseg(tmp_path, {"a": IMAGE, "b": IMAGE, "c": IMAGE}, {"a": [square(1.5, 2.5, 4.5, 5.5)]})
    labels = np.zeros(IMAGE.shape[:2], np.int32)
    labels[1:4, 1:4], labels[6:9, 6:9] = 7, 300  # any ids, 16-bit
    (tmp_path / "Label Maps").mkdir()
    (tmp_path / "labels").mkdir()
    write_label_map(tmp_path / "Label Maps" / "b", labels)
    with pytest.warns(DataWarning, match=r"1 of 3 images have no annotation \(XML or label map\) \(e\.g\. c\.tif\)"):
        samples = MoNuSeg(tmp_path).load()
    assert samples[0].annotation.endswith("a.xml") and samples[1].annotation.endswith("b.png")
    np.testing.assert_array_equal(samples[1].labels, labels)
    assert samples[2].labels is None and samples[2].annotation == ""
    write_label_map(tmp_path / "labels" / "a", labels)  # a user's correction of an image that has XML
    with pytest.raises(DataError, match=r"a\.xml and .*labels/a\.png: two annotations of image 'a'"):
        MoNuSeg(tmp_path)


@needs_shared("monuseg2018_train")
def test_real_monuseg_training_set():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        samples = MoNuSeg(SHARED_DATA / "monuseg2018_train").load()
    assert len(samples) == 30 and all(s.labelled for s in samples)
    assert all(s.image.shape == (1000, 1000, 3) for s in samples)
    from_xml = [s for s in samples if s.annotation.endswith(".xml")]
    assert len(from_xml) == 13
    assert sum(len(np.unique(s.labels)) - 1 for s in from_xml) == 4949  # README: regions with >= 3 vertices
    assert sum(len(np.unique(s.labels)) - 1 for s in samples) == 16959  # README: 4,949 + 12,010
    for sample in samples:  # nuclei land on nuclei: darker inside than outside or when shifted
        brightness, inside = sample.image.mean(axis=-1), sample.labels > 0
        assert brightness[inside].mean() < brightness[~inside].mean() - 25
        assert brightness[inside].mean() < brightness[np.roll(inside, (6, 6), axis=(0, 1))].mean() - 4


@needs_shared("monuseg2018_train")
def test_real_label_maps_survive_a_write_and_read_round_trip(tmp_path):
    dataset = MoNuSeg(SHARED_DATA / "monuseg2018_train")
    from_maps = [dataset.load_entry(e) for e in dataset.entries if e[2].suffix == ".png"]
    assert len(from_maps) == 17
    for sample in from_maps:
        written = write_label_map(tmp_path / sample.name, sample.labels)
        again = read_label_map(written)
        np.testing.assert_array_equal(again, sample.labels)  # the same ids on the same pixels
