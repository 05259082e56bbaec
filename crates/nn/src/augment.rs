//! Training-time image augmentation ([`space::augment::Augment`]): each image of a mini-batch shifted (and
//! mirrored) at random, in place, from the training's own random stream, so a training stays the same on
//! every run, thread count and resume.

use space::augment::{max_shift, Augment};
use space::Rng;

/// What to do to a training's images: built from the setting and the input's image shape.
#[derive(Clone, Debug)]
pub struct Augmenter {
    h: usize,
    w: usize,
    c: usize,
    max: usize,
    flip: bool,
    scratch: Vec<f32>,
}

impl Augmenter {
    /// The augmenter for images of `shape` (`[channels, height, width]`; rows laid out channel-last, as
    /// `data::prep` lays them out); `None` when there is nothing to do: no image, `none`, or an image too small
    /// to shift without a flip.
    pub fn new(setting: Augment, shape: Option<[usize; 3]>) -> Option<Augmenter> {
        let [c, h, w] = shape?;
        let flip = setting == Augment::ShiftFlip;
        let max = match setting {
            Augment::Off => return None,
            Augment::Shift | Augment::ShiftFlip => max_shift(h, w),
        };
        (max > 0 || flip).then(|| Augmenter {
            h,
            w,
            c,
            max,
            flip,
            scratch: vec![0.0; h * w * c],
        })
    }

    /// Transforms each image of `rows` (whole images, one after another), drawing from `rng`.
    pub fn apply(&mut self, rows: &mut [f32], rng: &mut Rng) {
        let (h, w, c) = (self.h, self.w, self.c);
        let span = 2 * self.max + 1;
        for img in rows.chunks_exact_mut(h * w * c) {
            let dy = rng.below(span) as isize - self.max as isize;
            let dx = rng.below(span) as isize - self.max as isize;
            let mirror = self.flip && rng.below(2) == 1;
            if dy == 0 && dx == 0 && !mirror {
                continue;
            }
            self.scratch.copy_from_slice(img);
            img.fill(0.0);
            for y in 0..h {
                let sy = y as isize - dy;
                if sy < 0 || sy >= h as isize {
                    continue;
                }
                for x in 0..w {
                    let sx = x as isize - dx;
                    if sx < 0 || sx >= w as isize {
                        continue;
                    }
                    let sx = if mirror {
                        w - 1 - sx as usize
                    } else {
                        sx as usize
                    };
                    let from = (sy as usize * w + sx) * c;
                    img[(y * w + x) * c..][..c].copy_from_slice(&self.scratch[from..][..c]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shift_moves_pixels_and_fills_the_border_with_zeros() {
        // One 2-channel 28×28 image whose pixel (y, x, ch) holds a code of its place.
        let (h, w, c) = (28, 28, 2);
        let code = |y: usize, x: usize, ch: usize| (1 + y * 1000 + x * 10 + ch) as f32;
        let img: Vec<f32> = (0..h * w * c)
            .map(|i| code(i / (w * c), (i / c) % w, i % c))
            .collect();
        let mut a = Augmenter::new(Augment::Shift, Some([c, h, w])).unwrap();
        let mut rng = Rng::derive(3, "augment", &[]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let mut out = img.clone();
            a.apply(&mut out, &mut rng);
            // Find the shift from where pixel (10, 10) went; every pixel must agree with it.
            let at = out.iter().position(|&v| v == code(10, 10, 0)).unwrap();
            let (dy, dx) = ((at / (w * c)) as isize - 10, ((at / c) % w) as isize - 10);
            assert!(dy.abs() <= 2 && dx.abs() <= 2, "{dy} {dx}");
            seen.insert((dy, dx));
            for y in 0..h {
                for x in 0..w {
                    for ch in 0..c {
                        let (sy, sx) = (y as isize - dy, x as isize - dx);
                        let inside = (0..h as isize).contains(&sy) && (0..w as isize).contains(&sx);
                        let want = if inside {
                            code(sy as usize, sx as usize, ch)
                        } else {
                            0.0
                        };
                        assert_eq!(out[(y * w + x) * c + ch], want);
                    }
                }
            }
        }
        assert_eq!(seen.len(), 25, "every shift of ±2 is drawn");
    }

    #[test]
    fn a_flip_mirrors_left_and_right_and_small_images_are_left_alone() {
        let (h, w) = (4, 3);
        let img: Vec<f32> = (0..h * w).map(|i| i as f32 + 1.0).collect();
        // 4×3 shifts by nothing, so only the mirror changes it: about half the draws.
        let mut a = Augmenter::new(Augment::ShiftFlip, Some([1, h, w])).unwrap();
        let mut rng = Rng::derive(4, "augment", &[]);
        let mirrored: Vec<f32> = (0..h * w)
            .map(|i| (i / w * w + (w - 1 - i % w)) as f32 + 1.0)
            .collect();
        let mut flips = 0;
        for _ in 0..100 {
            let mut out = img.clone();
            a.apply(&mut out, &mut rng);
            if out == mirrored {
                flips += 1;
            } else {
                assert_eq!(out, img);
            }
        }
        assert!((30..=70).contains(&flips), "{flips}");
        assert!(Augmenter::new(Augment::Shift, Some([1, 8, 8])).is_none());
        assert!(Augmenter::new(Augment::Shift, None).is_none());
        assert!(Augmenter::new(Augment::Off, Some([1, 28, 28])).is_none());
    }
}
