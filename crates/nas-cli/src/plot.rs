//! The report's plots: a hand-made SVG plot area with axes, ticks, dots and lines (no framework).

use crate::html::esc;
use std::fmt::Write as _;

/// A plot area mapping data to SVG coordinates.
pub(crate) struct Plot {
    pub(crate) svg: String,
    x: (f64, f64),
    y: (f64, f64),
    log_x: bool,
}

const W: f64 = 560.0;
const H: f64 = 340.0;
const L: f64 = 64.0;
const R: f64 = 16.0;
const T: f64 = 16.0;
const B: f64 = 48.0;

/// "Nice" tick values covering `lo..hi`.
fn ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let span = (hi - lo).max(1e-12);
    let raw = span / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= n as f64)
        .unwrap_or(10.0 * mag);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + step * 1e-9 {
        out.push(v);
        v += step;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v.abs() >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

impl Plot {
    pub(crate) fn new(
        id: &str,
        x: (f64, f64),
        y: (f64, f64),
        log_x: bool,
        xlabel: &str,
        ylabel: &str,
    ) -> Plot {
        let pad = |(a, b): (f64, f64), frac: f64| {
            let d = ((b - a) * frac).max(1e-9);
            (a - d, b + d)
        };
        let (x, y) = if log_x {
            let (a, b) = (x.0.max(1.0).log10(), x.1.max(1.0).log10());
            (pad((a, b.max(a + 0.5)), 0.05), pad(y, 0.08))
        } else {
            (pad(x, 0.04), pad(y, 0.08))
        };
        let mut p = Plot {
            svg: String::new(),
            x,
            y,
            log_x,
        };
        let _ = write!(
            p.svg,
            r##"<svg class="plot" id="{id}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img"><rect x="{L}" y="{T}" width="{}" height="{}" fill="#fafafa" stroke="#bbb"/>"##,
            W - L - R,
            H - T - B
        );
        for v in ticks(y.0, y.1, 6) {
            let py = p.py(v);
            let _ = write!(
                p.svg,
                r##"<line x1="{L}" x2="{}" y1="{py:.1}" y2="{py:.1}" stroke="#e4e4e4"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                W - R,
                L - 6.0,
                py + 4.0,
                fmt_tick(v)
            );
        }
        let xt: Vec<f64> = if log_x {
            let all: Vec<f64> = (x.0.floor() as i32..=x.1.ceil() as i32)
                .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
                .filter(|v| (x.0..=x.1).contains(&v.log10()))
                .collect();
            // Decades only when there are many.
            if all.len() > 8 {
                all.into_iter()
                    .filter(|v| v.log10().fract() == 0.0)
                    .collect()
            } else {
                all
            }
        } else {
            ticks(x.0, x.1, 8)
        };
        for v in xt {
            let px = p.px(v);
            let _ = write!(
                p.svg,
                r##"<line y1="{T}" y2="{}" x1="{px:.1}" x2="{px:.1}" stroke="#e4e4e4"/><text x="{px:.1}" y="{}" font-size="11" text-anchor="middle">{}</text>"##,
                H - B,
                H - B + 16.0,
                fmt_tick(v)
            );
        }
        let _ = write!(
            p.svg,
            r##"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text><text transform="translate(14 {}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"##,
            (L + W - R) / 2.0,
            H - 10.0,
            esc(xlabel),
            (T + H - B) / 2.0,
            esc(ylabel)
        );
        p
    }

    pub(crate) fn px(&self, x: f64) -> f64 {
        let x = if self.log_x { x.max(1.0).log10() } else { x };
        L + (x - self.x.0) / (self.x.1 - self.x.0) * (W - L - R)
    }

    pub(crate) fn py(&self, y: f64) -> f64 {
        H - B - (y - self.y.0) / (self.y.1 - self.y.0) * (H - T - B)
    }

    pub(crate) fn point(&mut self, x: f64, y: f64, r: f64, color: &str, title: &str) {
        let _ = write!(
            self.svg,
            r##"<circle cx="{:.1}" cy="{:.1}" r="{r}" fill="{color}" fill-opacity="0.8"><title>{}</title></circle>"##,
            self.px(x),
            self.py(y),
            esc(title)
        );
    }

    pub(crate) fn line(&mut self, pts: &[(f64, f64)], color: &str, width: f64) {
        self.path(pts, color, width, "");
    }

    /// A dashed [`Plot::line`].
    pub(crate) fn dashed(&mut self, pts: &[(f64, f64)], color: &str, width: f64) {
        self.path(pts, color, width, r#" stroke-dasharray="6 4""#);
    }

    fn path(&mut self, pts: &[(f64, f64)], color: &str, width: f64, extra: &str) {
        if pts.is_empty() {
            return;
        }
        let d: Vec<String> = pts
            .iter()
            .enumerate()
            .map(|(i, (x, y))| {
                format!(
                    "{}{:.1},{:.1}",
                    if i == 0 { "M" } else { "L" },
                    self.px(*x),
                    self.py(*y)
                )
            })
            .collect();
        let _ = write!(
            self.svg,
            r##"<path d="{}" fill="none" stroke="{color}" stroke-width="{width}"{extra}/>"##,
            d.join(" ")
        );
    }

    pub(crate) fn finish(mut self) -> String {
        self.svg.push_str("</svg>");
        self.svg
    }
}

pub(crate) fn range(v: impl Iterator<Item = f64>) -> (f64, f64) {
    v.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)))
}
