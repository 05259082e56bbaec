//! Image data sets besides a CSV of pixels: IDX files (the MNIST family's format, plain or gzip, images and
//! labels in two files), NPY arrays (features and labels in two files) and folders with one subfolder of PNG or
//! JPEG images per class.
//!
//! Both give a [`Dataset`] whose features are the pixels, channel-first (`c, h, w`) with values as stored
//! (0–255), and the image shape they found.

use crate::table::{Column, ColumnKind, CsvRows, Dataset};
use anyhow::{anyhow, bail, Result};
use std::path::Path;

/// Whether `bytes` start like an IDX file of unsigned bytes (`00 00 08 <dims>`).
pub fn is_idx(bytes: &[u8]) -> bool {
    bytes.len() >= 4
        && bytes[0] == 0
        && bytes[1] == 0
        && bytes[2] == 0x08
        && (1..=4).contains(&bytes[3])
}

/// An IDX file's dimensions and data (unsigned bytes only).
/// `bytes`: the file's content, decompressed (`path` names it in errors).
fn idx(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<u8>)> {
    if !is_idx(bytes) {
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

/// An IDX file's images: channel-first pixels, the row count, the shape, and the raw bytes (for the
/// fingerprint).
type IdxImages = (Vec<f32>, usize, [usize; 3], Vec<u8>);

/// Images from an IDX file, `[n, h, w]` (grey) or `[n, h, w, c]`.
fn idx_images(images: &Path, image_bytes: &[u8]) -> Result<IdxImages> {
    let (dims, px) = idx(images, image_bytes)?;
    let (n, c, h, w) = match dims[..] {
        [n, h, w] => (n, 1, h, w),
        [n, h, w, c] => (n, c, h, w),
        _ => bail!(
            "{}: IDX images need 3 or 4 dimensions, found {dims:?}",
            images.display()
        ),
    };
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
    Ok((x, n, [c, h, w], px))
}

/// The `n` labels of an IDX labels file (of the images file `images`), as texts, and its raw bytes.
fn idx_labels(labels: &Path, n: usize, images: &Path) -> Result<(Vec<String>, Vec<u8>)> {
    let (ldims, lab) = idx(labels, &crate::table::read_data_file(labels)?)?;
    if ldims != [n] {
        bail!(
            "{}: {} labels for the {n} images of {}",
            labels.display(),
            ldims.iter().product::<usize>(),
            images.display()
        );
    }
    Ok((lab.iter().map(|v| v.to_string()).collect(), lab))
}

/// Images and labels from two IDX files: images `[n, h, w]` (grey) or `[n, h, w, c]`, labels `[n]`.
/// `image_bytes` is the images file's content, already read (and decompressed).
pub fn load_idx(images: &Path, image_bytes: Vec<u8>, labels: &Path) -> Result<Dataset> {
    let (x, n, shape, px) = idx_images(images, &image_bytes)?;
    let (texts, lab) = idx_labels(labels, n, images)?;
    let (classes, y) = classes_of(&texts);
    let mut fp = space::rng::fnv1a(&px);
    fp ^= space::rng::fnv1a(&lab).rotate_left(1);
    let f = shape.iter().product();
    Ok(Dataset {
        x,
        y,
        features: f,
        columns: pixel_columns(f),
        classes,
        fingerprint: format!("{fp:016x}"),
        shape: Some(shape),
    })
}

/// The rows of an IDX images file or a `.npy` features file (`bytes`, already read), labelled from `labels`
/// when given, for prediction: `None` when the bytes are neither.
pub fn unlabelled_rows(
    path: &Path,
    bytes: &[u8],
    labels: Option<&Path>,
) -> Result<Option<CsvRows>> {
    if is_idx(bytes) {
        let (x, n, shape, _) = idx_images(path, bytes)?;
        let labels = labels.map(|l| idx_labels(l, n, path)).transpose()?;
        let columns = pixel_columns(shape.iter().product());
        return Ok(Some(CsvRows {
            x,
            columns,
            labels: labels.map(|l| l.0),
        }));
    }
    if is_npy(bytes) {
        let (x, n, shape) = npy_features(path, bytes)?;
        let labels = labels.map(|l| npy_labels(l, n, path)).transpose()?;
        let columns = npy_columns(x.len() / n.max(1), shape);
        let x = x.iter().map(|&v| v as f32).collect();
        return Ok(Some(CsvRows { x, columns, labels }));
    }
    Ok(None)
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
        fp = fp.rotate_left(5) ^ space::rng::fnv1a(&bytes);
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

/// Whether `bytes` start like a NumPy `.npy` file.
pub fn is_npy(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x93NUMPY")
}

/// A `.npy` array (little-endian `u1`, `i1`, `i4`, `i8`, `f4`, `f8`; C order) as numbers, with its shape.
/// `bytes`: the file's content, decompressed (`path` names it in errors).
fn npy(path: &Path, bytes: &[u8]) -> Result<(Vec<usize>, Vec<f64>)> {
    let bad = |why: &str| anyhow!("{}: not a NumPy array this reads: {why}", path.display());
    if !is_npy(bytes) || bytes.len() < 10 {
        return Err(bad("no \\x93NUMPY magic"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize,
            12,
        ),
        v => return Err(bad(&format!("format version {v}"))),
    };
    let header = std::str::from_utf8(
        bytes
            .get(start..start + len)
            .ok_or_else(|| bad("header cut short"))?,
    )
    .map_err(|_| bad("header is not text"))?;
    let field = |key: &str| -> Option<&str> {
        let at = header.find(&format!("'{key}':"))? + key.len() + 3;
        Some(header[at..].trim_start())
    };
    let descr = field("descr")
        .and_then(|v| v.strip_prefix('\''))
        .and_then(|v| v.split('\'').next())
        .ok_or_else(|| bad("no descr"))?;
    if field("fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(bad("Fortran order (save it with np.ascontiguousarray)"));
    }
    let shape_text = field("shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.parse().map_err(|_| bad("a shape that is not numbers")))
        .collect::<Result<_>>()?;
    let data = &bytes[start + len..];
    let n: usize = shape.iter().product();
    let (size, read): (usize, fn(&[u8]) -> f64) = match descr {
        "|u1" | "<u1" => (1, |b| b[0] as f64),
        "|i1" | "<i1" => (1, |b| b[0] as i8 as f64),
        "<i4" => (4, |b| i32::from_le_bytes(b.try_into().unwrap()) as f64),
        "<i8" => (8, |b| i64::from_le_bytes(b.try_into().unwrap()) as f64),
        "<f4" => (4, |b| f32::from_le_bytes(b.try_into().unwrap()) as f64),
        "<f8" => (8, |b| f64::from_le_bytes(b.try_into().unwrap())),
        other => {
            return Err(bad(&format!(
                "element type {other} (expected u1, i1, i4, i8, f4 or f8)"
            )))
        }
    };
    if data.len() != n * size {
        return Err(bad(&format!(
            "shape {shape:?} needs {} bytes of data, found {}",
            n * size,
            data.len()
        )));
    }
    Ok((shape, data.chunks(size).map(read).collect()))
}

/// The features of a `.npy` file: `[n, f]` (a table), `[n, h, w]` (grey images) or `[n, c, h, w]`
/// (channel-first images), as finite numbers, with the row count and the image shape.
fn npy_features(
    features: &Path,
    feature_bytes: &[u8],
) -> Result<(Vec<f64>, usize, Option<[usize; 3]>)> {
    let (dims, values) = npy(features, feature_bytes)?;
    let (n, shape) = match dims[..] {
        [n, _] => (n, None),
        [n, h, w] => (n, Some([1, h, w])),
        [n, c, h, w] => (n, Some([c, h, w])),
        _ => bail!(
            "{}: features need 2 to 4 dimensions, found {dims:?}",
            features.display()
        ),
    };
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        bail!(
            "{}: the features hold {v}, not a finite number",
            features.display()
        );
    }
    Ok((values, n, shape))
}

/// The `n` labels of a `.npy` labels file (of the features file `features`), as texts.
fn npy_labels(labels: &Path, n: usize, features: &Path) -> Result<Vec<String>> {
    let (ldims, lab) = npy(labels, &crate::table::read_data_file(labels)?)?;
    if ldims != [n] {
        bail!(
            "{}: labels of shape {ldims:?} for {n} rows of {}",
            labels.display(),
            features.display()
        );
    }
    Ok(lab.iter().map(|v| v.to_string()).collect())
}

/// A `.npy` file's `f` columns: pixels `p0…` for images, `x0…` for a table.
fn npy_columns(f: usize, shape: Option<[usize; 3]>) -> Vec<Column> {
    let mut columns = pixel_columns(f);
    if shape.is_none() {
        for (j, c) in columns.iter_mut().enumerate() {
            c.name = format!("x{j}");
        }
    }
    columns
}

/// Features and labels from two `.npy` files: features `[n, f]` (a table), `[n, h, w]` (grey images) or
/// `[n, c, h, w]` (channel-first images); labels `[n]` of integers or numbers.
/// `feature_bytes` is the features file's content, already read (and decompressed).
pub fn load_npy(features: &Path, feature_bytes: Vec<u8>, labels: &Path) -> Result<Dataset> {
    let (values, n, shape) = npy_features(features, &feature_bytes)?;
    let texts = npy_labels(labels, n, features)?;
    let f = values.len() / n.max(1);
    let (classes, y) = classes_of(&texts);
    let mut fp = space::rng::fnv1a(
        &values
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>(),
    );
    fp ^= space::rng::fnv1a(texts.join(",").as_bytes()).rotate_left(1);
    Ok(Dataset {
        x: values.iter().map(|&v| v as f32).collect(),
        y,
        features: f,
        columns: npy_columns(f, shape),
        classes,
        fingerprint: format!("{fp:016x}"),
        shape,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use space::experiment::DataSpec;

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
            source: space::DataSource::Path(d.join("x.idx")),
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
            source: space::DataSource::Path(d.to_path_buf()),
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

    fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((header.len() as u16).to_le_bytes());
        b.extend(header.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn npy_features_and_labels_load_as_a_table_or_images() {
        let d = tmp("npy");
        let x: Vec<u8> = [1.5f32, 2.0, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        std::fs::write(d.join("x.npy"), npy_bytes("<f4", "(3, 2)", &x)).unwrap();
        let y: Vec<u8> = [1i64, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(d.join("y.npy"), npy_bytes("<i8", "(3,)", &y)).unwrap();
        let spec = DataSpec {
            source: space::DataSource::Path(d.join("x.npy")),
            labels: Some(d.join("y.npy").to_string_lossy().into_owned()),
            ..Default::default()
        };
        let data = Dataset::load(&spec).unwrap();
        assert_eq!((data.features, data.shape), (2, None));
        assert_eq!(data.x, [1.5, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(
            (data.classes.clone(), data.y.clone()),
            (vec!["0".to_string(), "1".into()], vec![1, 0, 1])
        );
        assert_eq!(data.columns[1].name, "x1");
        // Grey images [n, h, w] of bytes.
        std::fs::write(
            d.join("img.npy"),
            npy_bytes("|u1", "(3, 1, 2)", &[0, 1, 2, 3, 4, 5]),
        )
        .unwrap();
        let data = Dataset::load(&DataSpec {
            source: space::DataSource::Path(d.join("img.npy")),
            ..spec.clone()
        })
        .unwrap();
        assert_eq!(data.shape, Some([1, 1, 2]));
        let e = Dataset::load(&DataSpec {
            labels: None,
            ..spec
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("name its labels file"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
