//! `loss.png`: one panel per loss term against the step, raw values faint and a moving
//! average on top, redrawn every epoch.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::prelude::*;

use super::metrics::Row;

/// DejaVu Sans cut down to ASCII (14 KB; licence in assets/), so plots have text on any
/// machine without system fonts.
const FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans-ascii.ttf");
const FONT_NAME: &str = "sans-serif";
static REGISTER_FONT: Once = Once::new();

const PANEL_WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 200;

pub fn draw(path: &Path, names: &[String], rows: &[Row]) -> Result<()> {
    REGISTER_FONT.call_once(|| {
        let _ = plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT);
    });
    if rows.is_empty() || names.is_empty() {
        return Ok(());
    }
    let (w, h) = (PANEL_WIDTH, PANEL_HEIGHT * names.len() as u32);
    let mut buffer = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let panels = root.split_evenly((names.len(), 1));
        let last_step = rows.last().map_or(1, |r| r.step.max(1)) as f64;
        for (column, (panel, name)) in panels.iter().zip(names).enumerate() {
            let raw: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|r| r.values.get(column).map(|&v| (r.step as f64, v)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            if raw.is_empty() {
                continue;
            }
            let smooth = moving_average(&raw, (raw.len() / 50).max(1));
            let (low, high) = robust_range(&raw);
            let mut chart = ChartBuilder::on(panel)
                .caption(name, (FONT_NAME, 16))
                .margin(8)
                .x_label_area_size(34)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..last_step, low..high)
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .configure_mesh()
                .label_style((FONT_NAME, 12))
                .x_labels(8)
                .x_desc("step")
                .y_labels(5)
                .draw()
                .map_err(|e| anyhow!("{e}"))?;
            let colour = Palette99::pick(column).to_rgba();
            chart
                .draw_series(LineSeries::new(raw.iter().copied(), colour.mix(0.25)))
                .map_err(|e| anyhow!("{e}"))?;
            chart
                .draw_series(LineSeries::new(smooth, colour.stroke_width(2)))
                .map_err(|e| anyhow!("{e}"))?;
            // Sparse series (FID, measured every few epochs) get a dot per measurement.
            if raw.len() * 20 < rows.len() {
                chart
                    .draw_series(raw.iter().map(|&p| Circle::new(p, 3, colour.filled())))
                    .map_err(|e| anyhow!("{e}"))?;
            }
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    let image = image::RgbImage::from_raw(w, h, buffer).expect("buffer matches size");
    crate::atomic::write_atomic(path, &crate::image_grid::png_bytes(&image))
        .map_err(anyhow::Error::msg)
}

/// Trailing mean over `window` points.
fn moving_average(points: &[(f64, f64)], window: usize) -> Vec<(f64, f64)> {
    let mut sum = 0.0;
    points
        .iter()
        .enumerate()
        .map(|(i, &(x, y))| {
            sum += y;
            if i >= window {
                sum -= points[i - window].1;
            }
            (x, sum / (i + 1).min(window) as f64)
        })
        .collect()
}

/// The 1st to 99th percentile, padded: one early spike must not flatten the whole curve.
fn robust_range(points: &[(f64, f64)]) -> (f64, f64) {
    let mut values: Vec<f64> = points.iter().map(|p| p.1).collect();
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    // Percentiles only mean something with many points (FID has one per evaluation).
    let (low, high) = match values.len() >= 100 {
        true => (at(0.01), at(0.99)),
        false => (at(0.0), at(1.0)),
    };
    let pad = ((high - low) * 0.1).max(1e-3);
    (low - pad, high + pad)
}
