//! `metrics.csv`: one row per step (step, epoch, every loss term, FID where measured,
//! images/s, wall time), kept
//! consistent with the checkpoints: a resumed run first drops rows after its checkpoint, so
//! the curve continues instead of repeating.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub struct Metrics {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
    pub columns: Vec<String>,
}

/// A parsed row: step and the loss values (for the plot).
pub struct Row {
    pub step: u64,
    pub values: Vec<f64>,
}

impl Metrics {
    /// Opens `path` for appending, keeping only rows up to `resume_step` (all if None).
    pub fn open(path: &Path, loss_names: &[String], keep_until: Option<u64>) -> Result<Self> {
        let mut columns = vec!["step".to_string(), "epoch".to_string()];
        columns.extend(loss_names.iter().cloned());
        columns.extend(["images_per_s".to_string(), "wall_s".to_string()]);
        let header = columns.join(",");
        let mut kept = vec![header.clone()];
        if let (Some(until), Ok(text)) = (keep_until, std::fs::read_to_string(path)) {
            let rows = text.lines().skip(1).filter(|line| {
                line.split(',')
                    .next()
                    .and_then(|s| s.parse::<u64>().ok())
                    .is_some_and(|step| step <= until)
            });
            kept.extend(rows.map(str::to_string));
        }
        let mut text = kept.join("\n");
        text.push('\n');
        crate::atomic::write_atomic(path, text.as_bytes()).map_err(anyhow::Error::msg)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("{}: cannot append", path.display()))?;
        Ok(Self {
            path: path.to_path_buf(),
            file: std::io::BufWriter::new(file),
            columns,
        })
    }

    pub fn append(
        &mut self,
        step: u64,
        epoch: u64,
        losses: &[f64],
        rate: f64,
        wall: f64,
    ) -> Result<()> {
        let mut line = format!("{step},{epoch}");
        for v in losses {
            // Terms not measured at this step (FID between evaluations) stay empty.
            match v.is_finite() {
                true => line.push_str(&format!(",{v:.6}")),
                false => line.push(','),
            }
        }
        line.push_str(&format!(",{rate:.3},{wall:.3}\n"));
        self.file
            .write_all(line.as_bytes())
            .with_context(|| format!("{}: write failed", self.path.display()))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .with_context(|| format!("{}: write failed", self.path.display()))
    }

    /// Every row so far (for the loss plot).
    pub fn rows(&mut self) -> Result<Vec<Row>> {
        self.flush()?;
        let text = std::fs::read_to_string(&self.path)?;
        let losses = self.columns.len() - 4;
        Ok(text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                let step = fields.first()?.parse().ok()?;
                let values = fields
                    .get(2..2 + losses)?
                    .iter()
                    .map(|f| f.parse().unwrap_or(f64::NAN))
                    .collect();
                Some(Row { step, values })
            })
            .collect())
    }
}
