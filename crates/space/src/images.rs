//! Image data sets besides a CSV of pixels: IDX files (the MNIST family's format, plain or gzip, images and
//! labels in two files) and folders with one subfolder of PNG or JPEG images per class.
//!
//! Both give a [`Dataset`] whose features are the pixels, channel-first (`c, h, w`) with values as stored
//! (0–255), and the image shape they found.

use crate::data::{Column, ColumnKind, Dataset};
use anyhow::{anyhow, bail, Result};
use std::io::Read;
use std::path::Path;

/// The bytes of a file, decompressed when it is gzip.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| anyhow!("{}: cannot decompress (gzip): {e}", path.display()))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

/// Whether `bytes` start like an IDX file of unsigned bytes (`00 00 08 <dims>`).
pub fn is_idx(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes[0] == 0
        && bytes[1] == 0
        && bytes[2] == 0x08
        && (1..=4).contains(&bytes[3])
}

/// An IDX file's dimensions and data (unsigned bytes only).
fn idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let bytes = read_maybe_gz(path)?;
    if !is_idx(&bytes) {
        bail!("{}: not an IDX file of unsigned bytes (expected the magic 00 00 08 and 1 to 4 dimensions)", path.display());
    }
    let n = bytes[3] as usize;
    let head = 4 + 4 * n;
    if bytes.len() < head {
        bail!("{}: IDX header cut short", path.display());
    }
    let dims: Vec<usize> = (0..n)
        .map(|i| u32::from_be_bytes(bytes[4 + 4 * i..8 + 4 * i].try_into().unwrap()) as usize)
        .collect();
    let want: usize = dims.iter().product();
    if bytes.len() - head != want {
        bail!(
            "{}: IDX dimensions {dims:?} need {want} bytes of data, the file has {}",
            path.display(),
            bytes.len() - head
        );
    }
    Ok((dims, bytes[head..].to_vec()))
}

fn pixel_columns(n: usize) -> Vec<Column> {
    (0..n)
        .map(|i| Column {
            name: format!("p{i}"),
            kind: ColumnKind::Numeric,
            missing: 0,
        })
        .collect()
}

/// Class indices for label texts: classes sorted (numerically when they are numbers).
fn classes_of(labels: &[String]) -> (Vec<String>, Vec<u32>) {
    let mut classes = labels.to_vec();
    classes.sort_by(|a, b| match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(p), Ok(q)) => p.total_cmp(&q),
        _ => a.cmp(b),
    });
    classes.dedup();
    let y = labels
        .iter()
        .map(|l| {
            classes
                .binary_search_by(|c| match (c.parse::<f64>(), l.parse::<f64>()) {
                    (Ok(p), Ok(q)) => p.total_cmp(&q),
                    _ => c.as_str().cmp(l),
                })
                .expect("a class of its own list") as u32
        })
        .collect();
    (classes, y)
}

/// Images and labels from two IDX files: images `[n, h, w]` (grey) or `[n, h, w, c]`, labels `[n]`.
pub fn load_idx(images: &Path, labels: &Path) -> Result<Dataset> {
    let (dims, px) = idx(images)?;
    let (ldims, lab) = idx(labels)?;
    let (n, c, h, w) = match dims[..] {
        [n, h, w] => (n, 1, h, w),
        [n, h, w, c] => (n, c, h, w),
        _ => bail!(
            "{}: IDX images need 3 or 4 dimensions, found {dims:?}",
            images.display()
        ),
    };
    if ldims != [n] {
        bail!(
            "{}: {} labels for the {n} images of {}",
            labels.display(),
            ldims.iter().product::<usize>(),
            images.display()
        );
    }
    let f = c * h * w;
    let mut x = Vec::with_capacity(n * f);
    for img in px.chunks(f) {
        // Stored pixel-major (h, w, c): reorder channel-first.
        for ci in 0..c {
            for p in 0..h * w {
                x.push(img[p * c + ci] as f32);
            }
        }
    }
    let texts: Vec<String> = lab.iter().map(|v| v.to_string()).collect();
    let (classes, y) = classes_of(&texts);
    let mut fp = crate::rng::fnv1a(&px);
    fp ^= crate::rng::fnv1a(&lab).rotate_left(1);
    Ok(Dataset {
        x,
        y,
        features: f,
        columns: pixel_columns(f),
        classes,
        fingerprint: format!("{fp:016x}"),
        shape: Some([c, h, w]),
    })
}

/// A folder with one subfolder per class of PNG or JPEG images (other files are ignored), all of one size
/// unless `resize` (`[h, w]`) is given; grey images give one channel, any colour image makes it three.
pub fn load_folder(dir: &Path, resize: Option<[usize; 2]>) -> Result<Dataset> {
    let mut classes: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| anyhow!("{}: cannot read the folder: {e}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    classes.sort();
    if classes.len() < 2 {
        bail!(
            "{}: an image folder needs one subfolder per class (at least 2), found {}",
            dir.display(),
            classes.len()
        );
    }
    let mut files = Vec::new();
    for (k, class) in classes.iter().enumerate() {
        let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(dir.join(class))
            .map_err(|e| anyhow!("{}: cannot read: {e}", dir.join(class).display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|x| x.to_str()).is_some_and(|x| {
                    matches!(x.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg")
                })
            })
            .collect();
        names.sort();
        files.extend(names.into_iter().map(|p| (p, k as u32)));
    }
    if files.is_empty() {
        bail!(
            "{}: no .png or .jpg images in the class subfolders",
            dir.display()
        );
    }
    let mut images = Vec::with_capacity(files.len());
    let mut fp = 0u64;
    for (path, _) in &files {
        let bytes =
            std::fs::read(path).map_err(|e| anyhow!("{}: cannot read: {e}", path.display()))?;
        fp = fp.rotate_left(5) ^ crate::rng::fnv1a(&bytes);
        let img = image::load_from_memory(&bytes)
            .map_err(|e| anyhow!("{}: cannot decode the image: {e}", path.display()))?;
        let img = match resize {
            Some([h, w]) => {
                img.resize_exact(w as u32, h as u32, image::imageops::FilterType::Triangle)
            }
            None => img,
        };
        images.push(img);
    }
    if resize.is_none() {
        let first = (&files[0].0, images[0].width(), images[0].height());
        if let Some((i, img)) = images
            .iter()
            .enumerate()
            .find(|(_, im)| (im.width(), im.height()) != (first.1, first.2))
        {
            bail!(
                "{}: images of different sizes ({} is {}×{}, {} is {}×{}); give a size to resize them to ([data] resize = [h, w], --resize H,W)",
                dir.display(),
                first.0.display(),
                first.1,
                first.2,
                files[i].0.display(),
                img.width(),
                img.height()
            );
        }
    }
    let colour = images.iter().any(|im| im.color().has_color());
    let (c, h, w) = (
        if colour { 3 } else { 1 },
        images[0].height() as usize,
        images[0].width() as usize,
    );
    let f = c * h * w;
    let mut x = Vec::with_capacity(files.len() * f);
    for img in &images {
        if colour {
            let rgb = img.to_rgb8();
            for ci in 0..3 {
                x.extend(rgb.pixels().map(|p| p.0[ci] as f32));
            }
        } else {
            x.extend(img.to_luma8().pixels().map(|p| p.0[0] as f32));
        }
    }
    Ok(Dataset {
        x,
        y: files.iter().map(|(_, k)| *k).collect(),
        features: f,
        columns: pixel_columns(f),
        classes,
        fingerprint: format!("{fp:016x}"),
        shape: Some([c, h, w]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::experiment::DataSpec;

    fn tmp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("nas-img-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn idx_bytes(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            b.extend(d.to_be_bytes());
        }
        b.extend(data);
        b
    }

    #[test]
    fn idx_files_plain_and_gzip_load_as_images() {
        let d = tmp("idx");
        let px: Vec<u8> = (0..3 * 2 * 2).map(|v| v as u8 * 10).collect();
        std::fs::write(d.join("x.idx"), idx_bytes(&[3, 2, 2], &px)).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &idx_bytes(&[3], &[7, 2, 7])).unwrap();
        std::fs::write(d.join("y.idx.gz"), gz.finish().unwrap()).unwrap();
        let spec = DataSpec {
            source: d.join("x.idx").to_string_lossy().into_owned(),
            labels: Some(d.join("y.idx.gz").to_string_lossy().into_owned()),
            ..Default::default()
        };
        let data = Dataset::load(&spec).unwrap();
        assert_eq!(data.shape, Some([1, 2, 2]));
        assert_eq!(data.classes, ["2", "7"]);
        assert_eq!(data.y, [1, 0, 1]);
        assert_eq!(&data.x[4..8], &[40., 50., 60., 70.]);
        // Without its labels file the images are named as IDX; labels that do not match are refused.
        let e = Dataset::load(&DataSpec {
            labels: None,
            ..spec.clone()
        })
        .unwrap_err();
        assert!(e.to_string().contains("name its labels file"), "{e}");
        std::fs::write(d.join("y2.idx"), idx_bytes(&[2], &[1, 2])).unwrap();
        let e = Dataset::load(&DataSpec {
            labels: Some(d.join("y2.idx").to_string_lossy().into_owned()),
            ..spec
        })
        .unwrap_err();
        assert!(e.to_string().contains("2 labels for the 3 images"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_image_folder_loads_by_class_and_mixed_sizes_need_resize() {
        let d = tmp("folder");
        for (class, v) in [("cat", 10u8), ("dog", 200u8)] {
            std::fs::create_dir_all(d.join(class)).unwrap();
            for i in 0..2u8 {
                let img = image::GrayImage::from_pixel(3, 2, image::Luma([v + i]));
                img.save(d.join(class).join(format!("{i}.png"))).unwrap();
            }
        }
        std::fs::write(d.join("cat/notes.txt"), "ignored").unwrap();
        let spec = DataSpec {
            source: d.to_string_lossy().into_owned(),
            ..Default::default()
        };
        let data = Dataset::load(&spec).unwrap();
        assert_eq!(data.shape, Some([1, 2, 3]));
        assert_eq!(data.classes, ["cat", "dog"]);
        assert_eq!(data.y, [0, 0, 1, 1]);
        assert_eq!(data.x[6], 11.0);
        // An RGB image makes every image three channels; a different size is refused naming both files.
        image::RgbImage::from_pixel(4, 4, image::Rgb([1, 2, 3]))
            .save(d.join("dog/big.png"))
            .unwrap();
        let e = Dataset::load(&spec).unwrap_err().to_string();
        assert!(
            e.contains("images of different sizes") && e.contains("big.png"),
            "{e}"
        );
        let data = Dataset::load(&DataSpec {
            resize: Some(vec![2, 2]),
            ..spec.clone()
        })
        .unwrap();
        assert_eq!(data.shape, Some([3, 2, 2]));
        assert_eq!(data.rows(), 5);
        // A file that does not decode is named.
        std::fs::write(d.join("dog/broken.png"), b"not a png").unwrap();
        let e = Dataset::load(&DataSpec {
            resize: Some(vec![2, 2]),
            ..spec
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("broken.png: cannot decode"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
