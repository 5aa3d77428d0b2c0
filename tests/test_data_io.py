import numpy as np
import pytest
import tifffile
from data_helpers import save_image
from PIL import Image

from sslbench.data.io import DataWarning, read_image, read_label_map, write_label_map
from sslbench.errors import DataError

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8)


def assert_one_line_error(path, match):
    with pytest.raises(DataError, match=match) as info:
        read_image(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp"])
def test_rgb_round_trips_exactly(tmp_path, suffix):
    np.testing.assert_array_equal(read_image(save_image(tmp_path / f"a{suffix}", RGB)), RGB)


def test_lzw_tiff_is_decoded_without_imagecodecs(tmp_path):
    path = save_image(tmp_path / "lzw.tif", RGB, pillow=True, compression="tiff_lzw")
    np.testing.assert_array_equal(read_image(path), RGB)


def test_pyramid_tiff_reads_level_0(tmp_path):
    path = tmp_path / "slide.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(RGB, photometric="rgb")
        tif.write(RGB[::2, ::2].copy(), photometric="rgb")  # thumbnail page, as in .svs
    np.testing.assert_array_equal(read_image(path), RGB)


def test_grayscale_is_replicated_with_a_warning(tmp_path):
    gray = RGB[..., 0]
    with pytest.warns(DataWarning, match="grayscale"):
        image = read_image(save_image(tmp_path / "g.png", gray))
    assert image.shape == (20, 30, 3) and (image == gray[..., None]).all()


def test_opaque_alpha_is_dropped_and_transparency_composited_on_white(tmp_path):
    rgba = np.dstack([RGB, np.full((20, 30), 255, np.uint8)])
    np.testing.assert_array_equal(read_image(save_image(tmp_path / "opaque.png", rgba)), RGB)
    rgba[..., 3] = 0
    rgba[0, 0, 3] = 255
    with pytest.warns(DataWarning, match="599 transparent pixels composited onto white"):
        image = read_image(save_image(tmp_path / "clear.png", rgba))
    assert (image[1:] == 255).all() and (image[0, 0] == RGB[0, 0]).all()


def test_16_bit_rules(tmp_path):
    full = RGB.astype(np.uint16) * 257  # full 16-bit range
    np.testing.assert_array_equal(read_image(save_image(tmp_path / "full.tif", full)), RGB)
    small = RGB.astype(np.uint16)  # 8-bit values in a 16-bit container are kept, not darkened
    np.testing.assert_array_equal(read_image(save_image(tmp_path / "small.tif", small)), RGB)
    big_endian = save_image(tmp_path / "be.tif", full.astype(">u2"), byteorder=">")
    np.testing.assert_array_equal(read_image(big_endian), RGB)
    gray16 = (RGB[..., 0].astype(np.uint16) * 257)
    with pytest.warns(DataWarning, match="grayscale"):
        assert (read_image(save_image(tmp_path / "g16.png", gray16))[..., 1] == RGB[..., 0]).all()


def test_palette_image_expands_colours_but_palette_label_map_keeps_indices(tmp_path):
    indices = RNG.integers(0, 4, (20, 30), dtype=np.uint8)
    palette_img = Image.fromarray(indices, mode="P")
    colours = [[200, 10, 10], [10, 200, 10], [10, 10, 200], [250, 250, 250]]
    palette_img.putpalette(sum(colours, []))
    path = tmp_path / "p.png"
    palette_img.save(path)
    np.testing.assert_array_equal(read_image(path), np.array(colours, np.uint8)[indices])
    np.testing.assert_array_equal(read_label_map(path), indices)


def test_float_images_in_unit_range_only(tmp_path):
    unit = RGB / 255.0
    np.testing.assert_array_equal(read_image(save_image(tmp_path / "f.tif", unit.astype(np.float32))), RGB)
    assert_one_line_error(save_image(tmp_path / "f255.tif", RGB.astype(np.float32) * 2), r"outside \[0, 1\]")
    assert_one_line_error(save_image(tmp_path / "i32.tif", RGB.astype(np.int32)), "dtype int32")


def test_stack_is_refused(tmp_path):
    assert_one_line_error(save_image(tmp_path / "z.tif", np.stack([RGB] * 5)), "not a stack")


@pytest.mark.parametrize("suffix,kwargs", [(".png", {}), (".jpg", {"quality": 95}), (".tif", {}),
                                           (".tif", {"compression": "zlib"})])
def test_truncated_files_are_refused(tmp_path, suffix, kwargs):
    path = save_image(tmp_path / f"cut{suffix}", RGB, **kwargs)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_one_line_error(path, "corrupt, truncated")


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_garbage_and_empty_files_are_refused(tmp_path, suffix):
    garbage = tmp_path / f"garbage{suffix}"
    garbage.write_bytes(b"this is not an image" * 10)
    assert_one_line_error(garbage, "corrupt, truncated")
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    assert_one_line_error(empty, "empty")
    assert_one_line_error(tmp_path / f"missing{suffix}", "no such file")


def test_whole_slide_over_the_pixel_limit_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (9000, 8000)).save(path)  # tiny file, 72 MP
    assert_one_line_error(path, "cut it into tiles")


def test_label_maps_round_trip_through_16_bit_png_and_32_bit_tiff(tmp_path):
    labels = RNG.integers(0, 300, (20, 30)).astype(np.int32)
    written = write_label_map(tmp_path / "l", labels)
    assert written.suffix == ".png" and Image.open(written).mode.startswith("I;16")
    np.testing.assert_array_equal(read_label_map(written), labels)
    labels[0, 0] = 70_000
    written = write_label_map(tmp_path / "big", labels)
    assert written.suffix == ".tif"
    np.testing.assert_array_equal(read_label_map(written), labels)


@pytest.mark.parametrize("array,match", [
    (np.array([[0, -1], [2, 3]]), "negative"),
    (np.array([[0, 1.5], [2, 3]]), "non-integer"),
    (np.array([[0, np.nan], [2, 3]]), "non-integer"),
    (np.arange(24).reshape(2, 4, 3), "must be 2-D"),
])
def test_bad_label_maps_are_refused(tmp_path, array, match):
    path = save_image(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=match):
        read_label_map(path)


def test_integer_valued_float_and_gray_rgb_label_maps_are_accepted(tmp_path):
    ids = np.array([[0, 1], [2, 3]])
    np.testing.assert_array_equal(read_label_map(save_image(tmp_path / "f.npy", ids.astype(float))), ids)
    gray_rgb = np.repeat(ids.astype(np.uint8)[..., None], 3, axis=-1)
    np.testing.assert_array_equal(read_label_map(save_image(tmp_path / "rgb.png", gray_rgb)), ids)


def test_binary_mask_given_as_label_map_warns(tmp_path):
    mask = np.zeros((10, 10), np.uint8)
    mask[1:3, 1:3] = mask[6:9, 6:9] = 255
    with pytest.warns(DataWarning, match="binary mask"):
        read_label_map(save_image(tmp_path / "mask.png", mask))
