//! Why a model file was refused, in words a person can act on.

use safetensors::SafeTensorError;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WeightsError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is truncated: it holds {found} bytes but needs at least {expected}")]
    Truncated { expected: usize, found: usize },
    #[error("not a safetensors model file ({0})")]
    NotSafetensors(String),
    #[error(
        "the file was written by a newer retrato (format version {found}; this build reads up to {supported}): update retrato"
    )]
    NewerVersion { found: u64, supported: u32 },
    #[error("its retrato header is invalid: {0}")]
    BadHeader(String),
    #[error("unknown model family '{0}' (known: dcgan, mlp, vae)")]
    UnknownFamily(String),
    #[error("it holds a {found} model, but a {expected} model was expected")]
    WrongFamily { expected: String, found: String },
    #[error("its model configuration is invalid: {0}")]
    BadConfig(String),
    #[error("tensor '{0}' is missing")]
    MissingTensor(String),
    #[error(
        "tensor '{0}' is not part of this model (does the header's configuration match the weights?)"
    )]
    UnexpectedTensor(String),
    #[error(
        "tensor '{tensor}' has shape {found:?}, but the model's configuration needs {expected:?}"
    )]
    WrongShape {
        tensor: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error("tensor '{tensor}' holds {count} NaN or infinite values")]
    NonFinite { tensor: String, count: usize },
    #[error("tensor '{tensor}' has unsupported type {dtype} (use F32, F16, BF16 or F64)")]
    UnsupportedDtype { tensor: String, dtype: String },
    #[error("it has no retrato header and is not a PyTorch DCGAN generator state_dict ({0})")]
    NotAModel(String),
    #[error("tensor '{tensor}' holds {value}, which f16 cannot store: save as f32")]
    F16Overflow { tensor: String, value: f32 },
    #[error("it is a discriminator for another architecture than the model's")]
    OtherArchitecture,
    #[error("cannot read it: {0}")]
    Io(String),
    #[error("internal error while loading: {0}")]
    Internal(String),
}

/// Turns a safetensors parse failure into the reason a person would give: a file cut short
/// is "truncated", anything else is "not safetensors".
pub(super) fn classify(bytes: &[u8], error: SafeTensorError) -> WeightsError {
    match declared_length(bytes) {
        Some(expected) if expected > bytes.len() => WeightsError::Truncated {
            expected,
            found: bytes.len(),
        },
        _ => WeightsError::NotSafetensors(error.to_string()),
    }
}

/// The file length a safetensors header claims, when the header itself can be read (or, for
/// a header cut short, when its length prefix looks like one).
fn declared_length(bytes: &[u8]) -> Option<usize> {
    let n = u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?) as usize;
    if bytes.get(8) != Some(&b'{') || n > 100_000_000 {
        return None;
    }
    let Some(header) = bytes.get(8..8 + n) else {
        return Some(8 + n);
    };
    let json: serde_json::Value = serde_json::from_slice(header).ok()?;
    let data_end = json
        .as_object()?
        .values()
        .filter_map(|t| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0) as usize;
    Some(8 + n + data_end)
}
