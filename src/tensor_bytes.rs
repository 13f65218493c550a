//! A safetensors tensor's little-endian bytes as f32 values, whatever float type it is stored
//! in: shared by the model file (`weights`) and the FID network's loader (`eval`).

use safetensors::Dtype;

/// The values of `bytes` stored as `dtype`, or None for a type that is not a float.
pub fn to_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let chunks = |width: usize| bytes.chunks_exact(width);
    Some(match dtype {
        Dtype::F32 => chunks(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => chunks(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => chunks(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8-byte chunk")) as f32)
            .collect(),
        _ => return None,
    })
}
