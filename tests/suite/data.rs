//! Reading training images: every kind of bad file is skipped with its reason, colour types
//! and EXIF orientation are handled, folders / tar / zip agree, and the decode cache is used.

use std::io::Cursor;

use image::{ImageFormat, Rgb, RgbImage};
use retrato::data::{DecodeError, Fit, decode_image};

fn encode(image: &image::DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A valid PNG header that claims 30000x30000 pixels, followed by almost no data.
pub fn png_bomb() -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let chunk = |kind: &[u8], data: &[u8], out: &mut Vec<u8>| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(30000u32.to_be_bytes());
    ihdr.extend(30000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr, &mut png);
    chunk(
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        &mut png,
    );
    chunk(b"IEND", &[], &mut png);
    png
}

pub fn half_red_half_blue(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    })
}

pub fn good_png() -> Vec<u8> {
    encode(&half_red_half_blue(20, 20).into(), ImageFormat::Png)
}

pub fn good_jpeg() -> Vec<u8> {
    encode(&half_red_half_blue(32, 32).into(), ImageFormat::Jpeg)
}

#[test]
fn bad_files_are_refused_with_their_reason() {
    let decode = |bytes: &[u8]| decode_image(bytes, 16, Fit::Crop);
    assert_eq!(decode(&[]), Err(DecodeError::Empty));
    assert_eq!(
        decode(b"just some text, renamed to .jpg"),
        Err(DecodeError::NotAnImage)
    );
    let png = good_png();
    assert!(matches!(
        decode(&png[..png.len() / 2]),
        Err(DecodeError::Corrupt(_))
    ));
    let jpeg = good_jpeg();
    let cut = decode(&jpeg[..jpeg.len() - 40]);
    assert!(
        matches!(cut, Err(DecodeError::Corrupt(_))),
        "truncated JPEG: {cut:?}"
    );
    assert_eq!(
        decode(&png_bomb()),
        Err(DecodeError::TooManyPixels {
            width: 30000,
            height: 30000
        })
    );
    assert!(
        decode(&png_bomb())
            .unwrap_err()
            .to_string()
            .contains("30000x30000")
    );
    assert_eq!(decode(&png).unwrap().len(), 16 * 16 * 3);
    assert_eq!(decode(&jpeg).unwrap().len(), 16 * 16 * 3);
}

#[test]
fn colour_types_become_rgb_and_transparency_becomes_white() {
    let grey = image::GrayImage::from_pixel(8, 8, image::Luma([100]));
    let out = decode_image(&encode(&grey.into(), ImageFormat::Png), 8, Fit::Crop).unwrap();
    assert!(out.iter().all(|&v| v == 100));
    let deep = image::ImageBuffer::<Rgb<u16>, _>::from_pixel(8, 8, Rgb([65535u16, 0, 32896]));
    let out = decode_image(&encode(&deep.into(), ImageFormat::Png), 8, Fit::Crop).unwrap();
    assert_eq!(&out[..3], &[255, 0, 128]);
    let clear = image::RgbaImage::from_pixel(8, 8, image::Rgba([0, 0, 0, 0]));
    let out = decode_image(&encode(&clear.into(), ImageFormat::Png), 8, Fit::Crop).unwrap();
    assert!(
        out.iter().all(|&v| v == 255),
        "fully transparent is white, not black"
    );
    for format in [ImageFormat::Bmp, ImageFormat::Gif, ImageFormat::WebP] {
        let rgb: image::DynamicImage = half_red_half_blue(8, 8).into();
        let bytes = match format {
            ImageFormat::Gif => encode(&rgb.to_rgba8().into(), format),
            _ => encode(&rgb, format),
        };
        let out = decode_image(&bytes, 8, Fit::Crop).unwrap();
        assert!(out[0] > 200 && out[2] < 50, "{format:?}: left is red");
    }
}

#[test]
fn crop_takes_the_centre_and_pad_keeps_everything() {
    // 40x20, left half red: the centre square (x 10..30) is half red, half blue.
    let wide = encode(&half_red_half_blue(40, 20).into(), ImageFormat::Png);
    let crop = decode_image(&wide, 20, Fit::Crop).unwrap();
    let pixel =
        |img: &[u8], x: usize, y: usize, side: usize| img[(y * side + x) * 3..][..3].to_vec();
    assert_eq!(pixel(&crop, 2, 10, 20), vec![255, 0, 0]);
    assert_eq!(pixel(&crop, 17, 10, 20), vec![0, 0, 255]);
    let pad = decode_image(&wide, 40, Fit::Pad).unwrap();
    assert_eq!(pixel(&pad, 20, 2, 40), vec![0, 0, 0], "letterbox above");
    assert_eq!(pixel(&pad, 2, 20, 40), vec![255, 0, 0]);
}

#[test]
fn exif_orientation_is_applied() {
    // Orientation 6: the stored picture must be turned 90° clockwise to display, so the
    // stored left (red) half ends up on top.
    let jpeg = good_jpeg();
    let exif: &[u8] = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
    let mut with_exif = jpeg[..2].to_vec();
    with_exif.extend([0xFF, 0xE1]);
    with_exif.extend(((exif.len() + 2) as u16).to_be_bytes());
    with_exif.extend(exif);
    with_exif.extend(&jpeg[2..]);
    let out = decode_image(&with_exif, 32, Fit::Crop).unwrap();
    let top = &out[(2 * 32 + 16) * 3..][..3];
    let bottom = &out[(29 * 32 + 16) * 3..][..3];
    assert!(top[0] > 200 && top[2] < 60, "top is red: {top:?}");
    assert!(
        bottom[2] > 200 && bottom[0] < 60,
        "bottom is blue: {bottom:?}"
    );
}

#[cfg(feature = "native")]
mod sources {
    use std::path::Path;

    use retrato::data::Fit;
    use retrato::data::cache::load;

    use super::{good_jpeg, good_png, png_bomb};
    use crate::toy::write_toy_folder;

    /// Ten toy faces (one in a subfolder) plus one file of each bad kind.
    fn messy_folder(dir: &Path) {
        write_toy_folder(dir, 9, 40);
        write_toy_folder(&dir.join("more"), 1, 40);
        std::fs::rename(dir.join("more/face-000.png"), dir.join("more/extra.png")).unwrap();
        std::fs::write(dir.join("empty.jpg"), b"").unwrap();
        std::fs::write(dir.join("notes.jpg"), b"this is text").unwrap();
        let png = good_png();
        std::fs::write(dir.join("cut.png"), &png[..png.len() / 2]).unwrap();
        let jpeg = good_jpeg();
        std::fs::write(dir.join("cut.jpg"), &jpeg[..jpeg.len() - 40]).unwrap();
        std::fs::write(dir.join("bomb.png"), png_bomb()).unwrap();
        std::fs::write(dir.join("README.txt"), b"not an image name").unwrap();
    }

    #[test]
    fn a_folder_is_read_recursively_and_bad_files_are_skipped_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        messy_folder(&data);
        let cache = dir.path().join("cache");
        let loaded = load(&data, 32, Fit::Crop, Some(&cache)).unwrap();
        assert_eq!(loaded.dataset.count, 10);
        assert_eq!(loaded.ignored, 1);
        assert!(!loaded.from_cache);
        let reasons: Vec<(String, String)> = loaded
            .skipped
            .iter()
            .map(|s| (s.name.clone(), s.reason.clone()))
            .collect();
        let reason_of = |name: &str| {
            reasons
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| r.clone())
                .unwrap_or_else(|| panic!("{name} not skipped: {reasons:?}"))
        };
        assert!(reason_of("empty.jpg").contains("empty"));
        assert!(reason_of("notes.jpg").contains("not an image"));
        assert!(reason_of("cut.png").contains("truncated or corrupt"));
        assert!(reason_of("cut.jpg").contains("truncated or corrupt"));
        assert!(reason_of("bomb.png").contains("30000x30000"));
        assert_eq!(reasons.len(), 5);

        let again = load(&data, 32, Fit::Crop, Some(&cache)).unwrap();
        assert!(again.from_cache, "second read comes from the decode cache");
        assert_eq!(again.dataset, loaded.dataset);
        assert_eq!(again.skipped, loaded.skipped);
        // A folder's entry is named after the whole folder name, dots and all.
        let dotted = dir.path().join("portraits-psi1.15");
        std::fs::rename(&data, &dotted).unwrap();
        let entry = load(&dotted, 32, Fit::Crop, Some(&cache))
            .unwrap()
            .cache_file
            .unwrap();
        let entry = entry.file_name().unwrap().to_string_lossy().into_owned();
        assert!(entry.starts_with("portraits-psi1.15-32px-"), "{entry}");
        std::fs::rename(&dotted, &data).unwrap();
        // Another size is another cache entry.
        assert!(!load(&data, 16, Fit::Crop, Some(&cache)).unwrap().from_cache);
        // Touching the data invalidates the entry.
        std::fs::write(data.join("more/new.png"), good_png()).unwrap();
        let changed = load(&data, 32, Fit::Crop, Some(&cache)).unwrap();
        assert!(!changed.from_cache);
        assert_eq!(changed.dataset.count, 11);
    }

    #[test]
    fn tar_and_zip_give_the_same_images_as_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        messy_folder(&data);
        let folder = load(&data, 32, Fit::Crop, None).unwrap();

        let tar_path = dir.path().join("data.tar");
        let mut tar = tar::Builder::new(std::fs::File::create(&tar_path).unwrap());
        tar.append_dir_all(".", &data).unwrap();
        tar.finish().unwrap();
        drop(tar);

        let zip_path = dir.path().join("data.zip");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let mut names: Vec<_> = walk(&data);
        names.sort();
        for path in names {
            let name = path
                .strip_prefix(&data)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            zip.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            std::io::Write::write_all(&mut zip, &std::fs::read(&path).unwrap()).unwrap();
        }
        zip.finish().unwrap();

        for archive in [&tar_path, &zip_path] {
            let loaded = load(archive, 32, Fit::Crop, None).unwrap();
            assert_eq!(loaded.dataset.count, 10, "{}", archive.display());
            assert_eq!(loaded.skipped.len(), 5);
            assert_eq!(loaded.ignored, 1);
            let mut a: Vec<&[u8]> = (0..10).map(|i| folder.dataset.image(i)).collect();
            let mut b: Vec<&[u8]> = (0..10).map(|i| loaded.dataset.image(i)).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "same pixels from {}", archive.display());
        }
        let error = load(&dir.path().join("missing.tar"), 32, Fit::Crop, None)
            .err()
            .unwrap();
        assert!(error.contains("missing.tar"), "{error}");
    }

    fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                files.extend(walk(&path));
            } else {
                files.push(path);
            }
        }
        files
    }
}

/// A photo's square: the centred one gives what training sees; a square outside the picture,
/// too few pixels across, or over a flat area is refused with its reason.
mod squares {
    use image::{Rgb, RgbImage};
    use retrato::data::{CropError, Fit, Square, crop_square, decode_image, decode_upright};

    use super::{ImageFormat, encode};

    fn photo() -> RgbImage {
        RgbImage::from_fn(90, 60, |x, y| {
            Rgb([(x * 2) as u8, (y * 3) as u8, ((x + y) % 256) as u8])
        })
    }

    #[test]
    fn the_centred_square_is_what_training_sees() {
        let bytes = encode(&photo().into(), ImageFormat::Png);
        let picture = decode_upright(&bytes).unwrap();
        assert_eq!(
            Square::centred(90, 60),
            Square {
                left: 15,
                top: 0,
                side: 60
            }
        );
        assert_eq!(
            crop_square(&picture, Square::centred(90, 60), 32).unwrap(),
            decode_image(&bytes, 32, Fit::Crop).unwrap()
        );
    }

    #[test]
    fn a_square_cuts_out_exactly_its_pixels() {
        let picture = photo();
        let square = Square {
            left: 50,
            top: 20,
            side: 32,
        };
        let out = crop_square(&picture, square, 32).unwrap();
        assert_eq!(&out[..3], &picture.get_pixel(50, 20).0);
        let last = (31 * 32 + 31) * 3;
        assert_eq!(&out[last..last + 3], &picture.get_pixel(81, 51).0);
    }

    #[test]
    fn bad_squares_are_refused_with_their_reason() {
        let picture = photo();
        let outside = Square {
            left: 70,
            top: 0,
            side: 30,
        };
        let error = crop_square(&picture, outside, 32).unwrap_err();
        assert!(matches!(error, CropError::Outside { .. }));
        assert!(
            error.to_string().contains("outside the 90x60 picture"),
            "{error}"
        );
        let overflow = Square {
            left: u32::MAX,
            top: 0,
            side: 30,
        };
        assert!(matches!(
            crop_square(&picture, overflow, 32),
            Err(CropError::Outside { .. })
        ));
        let tiny = Square {
            left: 0,
            top: 0,
            side: 10,
        };
        let error = crop_square(&picture, tiny, 32).unwrap_err();
        assert_eq!(error, CropError::TooSmall { side: 10 });
        assert!(
            error.to_string().contains("only 10 pixels across"),
            "{error}"
        );
        let flat = RgbImage::from_pixel(64, 64, Rgb([120, 130, 140]));
        assert_eq!(
            crop_square(&flat, Square::centred(64, 64), 32),
            Err(CropError::Flat)
        );
    }
}
