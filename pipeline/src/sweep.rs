//! The threshold sweep: protection versus friction as a step-up threshold on
//! the records' `score` moves.
//!
//! For each threshold `t` from 0 to 101, a sensitive action (CONTRACT.md,
//! "Evaluation terms") is taken as stepped up iff its record's `score >= t`;
//! protection and friction are then counted as the contract defines them. At
//! 0 every sensitive action is stopped (the `always` baseline), at 101 none
//! (`never`); in between the curve shows what a pure score threshold buys,
//! beside the engine's real operating point, whose decisions also weigh the
//! action's sensitivity and the session's assurance.
//!
//! The sweep needs one count per score, so [`ScoreCounts`] is all the
//! [`Evaluator`](crate::evaluate::Evaluator) keeps for it; [`Sweep::new`] is
//! a pure function of those counts and the report. Writing it out is
//! [`Sweep::write_csv`] and [`Sweep::write_png`].

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::evaluate::{Ratio, Systems};

/// The highest score a record carries (CONTRACT.md: `score` is 0 to 100).
pub const MAX_SCORE: u8 = 100;

/// The highest threshold swept: one above [`MAX_SCORE`], where nothing is
/// stopped.
pub const MAX_THRESHOLD: u8 = MAX_SCORE + 1;

/// The CSV header of [`Sweep::write_csv`].
pub const CSV_HEADER: &str =
    "point,threshold,protection,friction,protection_num,protection_den,friction_num,friction_den";

/// Width and height of [`Sweep::write_png`]'s image, in pixels.
pub const PNG_SIZE: (u32, u32) = (1400, 720);

/// The font family name the plot's text is registered under.
const FONT: &str = "sans-serif";

/// Sensitive actions per record score, attacker and benign apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreCounts {
    attack: [u64; MAX_SCORE as usize + 1],
    benign: [u64; MAX_SCORE as usize + 1],
}

impl Default for ScoreCounts {
    fn default() -> Self {
        ScoreCounts {
            attack: [0; MAX_SCORE as usize + 1],
            benign: [0; MAX_SCORE as usize + 1],
        }
    }
}

impl ScoreCounts {
    /// No sensitive action yet.
    pub fn new() -> Self {
        ScoreCounts::default()
    }

    /// Counts one sensitive action. A score above [`MAX_SCORE`] (outside the
    /// contract) counts as [`MAX_SCORE`].
    pub fn add(&mut self, attack: bool, score: u8) {
        let slot = usize::from(score.min(MAX_SCORE));
        if attack {
            self.attack[slot] += 1;
        } else {
            self.benign[slot] += 1;
        }
    }

    /// Protection and friction when exactly the sensitive actions with
    /// `score >= threshold` are stepped up.
    pub fn at(&self, threshold: u8) -> SweepPoint {
        let from = usize::from(threshold.min(MAX_THRESHOLD));
        let sum = |counts: &[u64]| -> (u64, u64) {
            let all = counts.iter().sum();
            let stopped = counts.get(from..).map_or(0, |c| c.iter().sum());
            (stopped, all)
        };
        let (attack_stopped, attack) = sum(&self.attack);
        let (benign_stopped, benign) = sum(&self.benign);
        SweepPoint {
            threshold,
            protection: Ratio::new(attack_stopped, attack),
            friction: Ratio::new(benign_stopped, benign),
        }
    }
}

/// One threshold of the sweep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SweepPoint {
    /// Sensitive actions with `score >= threshold` are stepped up.
    pub threshold: u8,
    /// Attacker sensitive actions stepped up.
    pub protection: Ratio,
    /// Benign sensitive actions stepped up.
    pub friction: Ratio,
}

/// A system's operating point: the engine or a baseline.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NamedPoint {
    /// `engine`, `always`, `timer-15m` or `never`.
    pub name: &'static str,
    /// Its overall protection.
    pub protection: Ratio,
    /// Its overall friction.
    pub friction: Ratio,
}

/// The protection-versus-friction curve and the systems beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct Sweep {
    /// Thresholds 0 to [`MAX_THRESHOLD`], in order.
    pub curve: Vec<SweepPoint>,
    /// The engine and the baselines, in [`SYSTEMS`](crate::evaluate::SYSTEMS)
    /// order.
    pub points: Vec<NamedPoint>,
}

/// A failure to write the sweep.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Creating or writing the output file.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// Plotters failed to draw into the in-memory bitmap.
    #[error("cannot draw the sweep plot: {0}")]
    Draw(String),
    /// The embedded font did not parse.
    #[error("the embedded DejaVu Sans font is not a valid font")]
    Font,
    /// PNG encoding failed.
    #[error("cannot encode {path} as PNG: {source}")]
    Encode {
        /// The output file.
        path: PathBuf,
        /// What the encoder said.
        #[source]
        source: png::EncodingError,
    },
}

impl Sweep {
    /// The sweep over `scores`, with the systems' overall operating points.
    pub fn new(scores: &ScoreCounts, systems: &Systems) -> Self {
        Sweep {
            curve: (0..=MAX_THRESHOLD).map(|t| scores.at(t)).collect(),
            points: systems
                .iter()
                .into_iter()
                .map(|(name, report)| NamedPoint {
                    name,
                    protection: report.overall.protection,
                    friction: report.overall.friction,
                })
                .collect(),
        }
    }

    /// The sweep as CSV ([`CSV_HEADER`]): one `sweep` row per threshold,
    /// then one row per system with an empty threshold. A ratio whose
    /// denominator is zero has an empty value.
    pub fn to_csv(&self) -> String {
        fn value(r: Ratio) -> String {
            r.value.map(|v| v.to_string()).unwrap_or_default()
        }
        let mut s = String::new();
        s.push_str(CSV_HEADER);
        s.push('\n');
        let rows = self
            .curve
            .iter()
            .map(|p| ("sweep", Some(p.threshold), p.protection, p.friction))
            .chain(
                self.points
                    .iter()
                    .map(|p| (p.name, None, p.protection, p.friction)),
            );
        for (name, threshold, protection, friction) in rows {
            // Writing to a String cannot fail.
            let _ = writeln!(
                s,
                "{name},{},{},{},{},{},{},{}",
                threshold.map(|t| t.to_string()).unwrap_or_default(),
                value(protection),
                value(friction),
                protection.numerator,
                protection.denominator,
                friction.numerator,
                friction.denominator,
            );
        }
        s
    }

    /// Writes [`Sweep::to_csv`] to `path`.
    pub fn write_csv(&self, path: &Path) -> Result<(), SweepError> {
        std::fs::write(path, self.to_csv()).map_err(|source| SweepError::Write {
            path: path.to_owned(),
            source,
        })
    }

    /// Draws the plot as a PNG of [`PNG_SIZE`] into `path`: friction on x,
    /// protection on y, the sweep as a line with every tenth threshold
    /// marked, the engine and the baselines as labelled markers.
    pub fn write_png(&self, path: &Path) -> Result<(), SweepError> {
        let (w, h) = PNG_SIZE;
        let mut rgb = vec![0u8; w as usize * h as usize * 3];
        self.draw(&mut rgb)?;
        let file = std::fs::File::create(path).map_err(|source| SweepError::Write {
            path: path.to_owned(),
            source,
        })?;
        let mut out = io::BufWriter::new(file);
        let encode = |source| SweepError::Encode {
            path: path.to_owned(),
            source,
        };
        let mut encoder = png::Encoder::new(&mut out, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(encode)?;
        writer.write_image_data(&rgb).map_err(encode)?;
        writer.finish().map_err(encode)?;
        out.flush().map_err(|source| SweepError::Write {
            path: path.to_owned(),
            source,
        })
    }

    fn draw(&self, rgb: &mut [u8]) -> Result<(), SweepError> {
        register_font()?;
        let root = BitMapBackend::with_buffer(rgb, PNG_SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        // ab_glyph text sits higher than its box: room above the title.
        let root = root
            .margin(14, 0, 0, 0)
            .titled(
                "Protection vs friction: step up iff score \u{2265} threshold",
                (FONT, 28),
            )
            .map_err(draw_error)?;
        let (full, zoom) = root.split_horizontally(PNG_SIZE.0 * 11 / 20);
        self.draw_panel(&full, 1.0, "all friction (0 to 1)")?;
        // The zoom shows the low-friction end where operating points worth
        // having sit: 5 % of benign sensitive actions, or enough to hold
        // the engine's point.
        let engine = self
            .points
            .iter()
            .find(|p| p.name == "engine")
            .and_then(|p| p.friction.value)
            .unwrap_or(0.0);
        let zoom_max = ((engine * 1.25 / 0.05).ceil().max(1.0) * 0.05).min(1.0);
        self.draw_panel(
            &zoom,
            zoom_max,
            &format!("low friction (0 to {zoom_max:.2})"),
        )?;
        root.present().map_err(draw_error)?;
        Ok(())
    }

    /// One panel: friction from 0 to `x_max`, protection from 0 to 1. The
    /// legend goes on the full panel only.
    fn draw_panel(
        &self,
        area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
        x_max: f64,
        caption: &str,
    ) -> Result<(), SweepError> {
        let legend = x_max >= 1.0;
        // A little room around the edges so markers there stay whole.
        let pad = 0.02;
        let mut chart = ChartBuilder::on(area)
            .caption(caption, (FONT, 20))
            .margin(16)
            .x_label_area_size(56)
            .y_label_area_size(64)
            .build_cartesian_2d(-pad * x_max..x_max * (1.0 + pad), -pad..1.0 + pad)
            .map_err(draw_error)?;
        let x_format = move |v: &f64| {
            // A tick at zero may come out as -0.000.
            let v = if v.abs() < 1e-12 { 0.0 } else { *v };
            if x_max >= 0.5 {
                format!("{v:.1}")
            } else {
                format!("{v:.3}")
            }
        };
        chart
            .configure_mesh()
            .x_desc("friction (benign sensitive actions stopped)")
            .y_desc("protection (attacker sensitive actions stopped)")
            .x_labels(6)
            .y_labels(11)
            .x_label_formatter(&x_format)
            .y_label_formatter(&|v| format!("{v:.1}"))
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .light_line_style(TRANSPARENT)
            .bold_line_style(BLACK.mix(0.1))
            .draw()
            .map_err(draw_error)?;

        // The curve, where both ratios exist, cut at the panel's edge.
        let xy = |p: &SweepPoint| Some((p.friction.value?, p.protection.value?));
        let points: Vec<(f64, f64)> = self.curve.iter().filter_map(xy).collect();
        let line = BLUE.stroke_width(2);
        chart
            .draw_series(LineSeries::new(clip_x(&points, x_max), line))
            .map_err(draw_error)?
            .label(format!("score threshold 0..{MAX_THRESHOLD}"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], line));

        // Every tenth threshold, labelled unless an earlier label sits on
        // (nearly) the same spot.
        let mut labelled: Vec<(f64, f64)> = Vec::new();
        let small = (FONT, 14).into_font().color(&BLUE);
        for p in self.curve.iter().filter(|p| p.threshold % 10 == 0) {
            let Some((x, y)) = xy(p) else { continue };
            if x > x_max {
                continue;
            }
            let dot = EmptyElement::at((x, y)) + Circle::new((0, 0), 3, BLUE.filled());
            chart.draw_series([dot]).map_err(draw_error)?;
            let crowded = labelled
                .iter()
                .any(|(lx, ly)| (lx - x).abs() < 0.06 * x_max && (ly - y).abs() < 0.04);
            if !crowded {
                labelled.push((x, y));
                let right = x > 0.8 * x_max;
                let style = small.clone().pos(Pos::new(
                    if right { HPos::Right } else { HPos::Left },
                    VPos::Center,
                ));
                let dx = if right { -12 } else { 7 };
                let text = EmptyElement::at((x, y))
                    + Text::new(format!("t={}", p.threshold), (dx, 0), style);
                chart.draw_series([text]).map_err(draw_error)?;
            }
        }

        // The engine and the baselines.
        for (i, point) in self.points.iter().enumerate() {
            let (Some(x), Some(y)) = (point.friction.value, point.protection.value) else {
                continue;
            };
            if x > x_max {
                continue;
            }
            let name = point.name;
            let color = marker_color(name);
            // Labels point into the plot, and stack when points coincide.
            let right = x > 0.7 * x_max;
            let stack = self.points[..i]
                .iter()
                .filter(|q| {
                    q.friction
                        .value
                        .zip(q.protection.value)
                        .is_some_and(|(qx, qy)| {
                            (qx - x).abs() < 0.03 * x_max && (qy - y).abs() < 0.03
                        })
                })
                .count() as i32;
            let dy = if y > 0.9 {
                22 + 20 * stack
            } else {
                -18 - 20 * stack
            };
            let anchor = Pos::new(if right { HPos::Right } else { HPos::Left }, VPos::Center);
            let style = (FONT, 17).into_font().color(&color).pos(anchor);
            let label = format!("{name} ({x:.3}, {y:.3})");
            let dx = if right { -10 } else { 10 };
            let element = EmptyElement::at((x, y))
                + marker::<BitMapBackend<'_>>(name, (0, 0))
                + Text::new(label, (dx, dy), style);
            let drawn = chart.draw_series([element]).map_err(draw_error)?;
            if legend {
                drawn
                    .label(name)
                    .legend(move |c| marker::<BitMapBackend<'_>>(name, c));
            }
        }

        if legend {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .margin(16)
                .label_font((FONT, 16))
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .draw()
                .map_err(draw_error)?;
        }
        Ok(())
    }
}

/// A plotters failure as a [`SweepError`].
fn draw_error(e: impl std::fmt::Display) -> SweepError {
    SweepError::Draw(e.to_string())
}

/// The polyline `points` cut where it leaves `x <= x_max`: a segment that
/// crosses the edge ends there, so a zoomed panel shows where the curve
/// goes without drawing outside its frame.
fn clip_x(points: &[(f64, f64)], x_max: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut previous: Option<(f64, f64)> = None;
    for &(x, y) in points {
        if let Some((px, py)) = previous
            && (px > x_max) != (x > x_max)
        {
            out.push((x_max, py + (y - py) * (x_max - px) / (x - px)));
        }
        if x <= x_max {
            out.push((x, y));
        }
        previous = Some((x, y));
    }
    out
}

/// Each system's marker, centred on `c`.
fn marker<DB: DrawingBackend>(name: &str, c: (i32, i32)) -> DynElement<'static, DB, (i32, i32)> {
    let color = marker_color(name);
    let style = color.filled();
    match name {
        "engine" => Circle::new(c, 8, style).into_dyn(),
        "always" => TriangleMarker::new(c, 9, style).into_dyn(),
        "never" => Rectangle::new([(c.0 - 6, c.1 - 6), (c.0 + 6, c.1 + 6)], style).into_dyn(),
        _ => Cross::new(c, 7, color.stroke_width(3)).into_dyn(),
    }
}

/// Each system's colour on the plot.
fn marker_color(name: &str) -> RGBColor {
    match name {
        "engine" => RED,
        "always" => RGBColor(230, 140, 0),
        "timer-15m" => RGBColor(0, 140, 60),
        _ => RGBColor(90, 90, 90),
    }
}

/// Registers DejaVu Sans, from the bytes the `dejavu` crate embeds, as
/// [`FONT`]: plotters' `ab_glyph` text reads no system font, so a clean
/// machine draws the same text.
fn register_font() -> Result<(), SweepError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
    });
    if ok { Ok(()) } else { Err(SweepError::Font) }
}
