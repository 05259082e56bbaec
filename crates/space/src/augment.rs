//! Training-time image augmentation (`[evaluate] augment`): what a training may do to its images, and how far
//! a shift goes. The transform itself is `nn::augment`'s.

string_enum!(
    /// What a training does to each training image of a mini-batch, drawn anew each time the image is used
    /// (held-out rows, predictions and exports see the images as they are). Images only: other data is not
    /// touched whatever the setting.
    Augment, "[evaluate] augment", {
        /// Nothing.
        Off = "none",
        /// A random translation by up to [`max_shift`] pixels in each direction, the uncovered border filled
        /// with zeros (the standardised mean).
        Shift = "shift",
        /// A shift, and a mirror image (left-right) half of the time: for photographs of objects, not for
        /// digits or letters, whose mirror images are other symbols.
        ShiftFlip = "shift_flip",
    }
);

/// How many pixels a shift may move an `h × w` image in each direction: a fourteenth of its smaller side
/// (2 at 28×28 and 32×32, 4 at 64×64), so images under 14 pixels are not shifted.
pub fn max_shift(h: usize, w: usize) -> usize {
    h.min(w) / 14
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_scale_with_the_image() {
        assert_eq!(max_shift(8, 8), 0);
        assert_eq!(max_shift(28, 28), 2);
        assert_eq!(max_shift(32, 64), 2);
        assert_eq!(max_shift(224, 224), 16);
        assert_eq!("shift_flip".parse::<Augment>().unwrap(), Augment::ShiftFlip);
        assert!("flip"
            .parse::<Augment>()
            .unwrap_err()
            .to_string()
            .contains("[evaluate] augment"));
    }
}
