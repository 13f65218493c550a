//! The model card's training note, written alike by every door (`retrato train` and the
//! page's fine-tuning), and durations as a person reads them.

use super::Trainer;
use super::checkpoint::RunInfo;

/// One sentence on how the model was trained: where (`door`, e.g. "with `retrato train`" or
/// "in the browser"), from what, on what, with which recipe and for how long.
pub fn training_note(trainer: &Trainer, info: &RunInfo, door: &str) -> String {
    let t = &trainer.config.train;
    let objective = serde_json::to_value(t.objective)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    let origin = match &info.started_from {
        Some(from) => format!("Fine-tuned from {from} {door}"),
        None => format!("Trained {door}"),
    };
    let mut recipe = vec![
        format!("objective {objective}"),
        format!("{} steps of batch {}", trainer.step, t.batch_size),
        format!("learning rate {}", t.lr_g),
    ];
    if t.lr_decay_end > 0 {
        recipe.push(format!(
            "decayed linearly to x{} from step {} to {}",
            t.lr_decay_final, t.lr_decay_start, t.lr_decay_end
        ));
    }
    if trainer.lr_scale < 1.0 {
        recipe.push(format!("x{} after divergence rollbacks", trainer.lr_scale));
    }
    if t.freeze_d > 0 {
        recipe.push(format!("FreezeD {}", t.freeze_d));
    }
    if t.freeze_g > 0 {
        recipe.push(format!("FreezeG {}", t.freeze_g));
    }
    if !t.augment.is_empty() {
        recipe.push(format!("DiffAugment {:?}", t.augment));
    }
    if info.elapsed_seconds > 0.0 {
        recipe.push(format_seconds(info.elapsed_seconds));
    }
    if trainer.ema.is_some() {
        recipe.push(format!("generator EMA {}", t.ema_decay));
    }
    let on = match info.dataset.is_empty() {
        true => String::new(),
        false => format!(" on {}", info.dataset),
    };
    format!("{origin}{on}: {}.", recipe.join(", "))
}

/// `42s`, `3m07s`, `2h09m`; `?` for a time not known.
pub fn format_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "?".into();
    }
    let s = seconds.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s / 60) % 60),
    }
}
