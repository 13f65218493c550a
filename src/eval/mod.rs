//! Measuring models: the FID Inception network ([`inception`]) and the input pipeline that
//! feeds it exactly as the reference does.

#[cfg(feature = "native")]
pub mod extractor;
pub mod inception;
pub mod neighbours;
#[cfg(feature = "native")]
pub mod probe;
pub mod scores;
#[cfg(feature = "native")]
pub mod sets;
pub mod stats;

use burn::tensor::{Device, Tensor, TensorData};

use inception::{INPUT_SIZE, Inception};

/// uint8 RGB images (N×size×size×3, the `.npy` layout) → the network's input
/// [N, 3, 299, 299] in [-1, 0.9921875]. The resize is the reference's `nv_bilinear_float`
/// (NVIDIA's StyleGAN2-ADA metric code: `affine_grid` + `grid_sample`, border padding,
/// no rounding): output pixel i samples the input at i·size/299 (pixel centres at integers)
/// with bilinear weights, clamped to the image.
pub fn network_input(pixels: &[u8], size: usize, device: &Device) -> Tensor<4> {
    let n = pixels.len() / (size * size * 3);
    let out = INPUT_SIZE;
    let scale = size as f64 / out as f64;
    let taps: Vec<(usize, usize, f32)> = (0..out)
        .map(|i| {
            let src = (i as f64 * scale).min((size - 1) as f64);
            let low = src.floor() as usize;
            let high = (low + 1).min(size - 1);
            (low, high, (src - low as f64) as f32)
        })
        .collect();
    let mut values = vec![0f32; n * 3 * out * out];
    for image in 0..n {
        let src = &pixels[image * size * size * 3..(image + 1) * size * size * 3];
        let at = |y: usize, x: usize, c: usize| src[(y * size + x) * 3 + c] as f32;
        for c in 0..3 {
            let plane = &mut values[(image * 3 + c) * out * out..(image * 3 + c + 1) * out * out];
            for (oy, &(y0, y1, fy)) in taps.iter().enumerate() {
                for (ox, &(x0, x1, fx)) in taps.iter().enumerate() {
                    let top = at(y0, x0, c) * (1.0 - fx) + at(y0, x1, c) * fx;
                    let bottom = at(y1, x0, c) * (1.0 - fx) + at(y1, x1, c) * fx;
                    let v = top * (1.0 - fy) + bottom * fy;
                    plane[oy * out + ox] = (v / 128.0 - 1.0).clamp(-1.0, 0.9921875);
                }
            }
        }
    }
    Tensor::from_data(TensorData::new(values, [n, 3, out, out]), device)
}

/// Pool3 features (N×2048, row-major) of uint8 images, `batch` images per forward pass;
/// `progress` hears the number of images done after each pass.
pub fn features(
    net: &Inception,
    pixels: &[u8],
    size: usize,
    batch: usize,
    device: &Device,
    progress: &mut dyn FnMut(usize),
) -> Vec<f32> {
    let per_image = size * size * 3;
    let mut values = Vec::with_capacity(pixels.len() / per_image * inception::FEATURES);
    for chunk in pixels.chunks(per_image * batch.max(1)) {
        let x = network_input(chunk, size, device);
        let rows = net
            .forward(x)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 after convert");
        values.extend(rows);
        progress(values.len() / inception::FEATURES);
    }
    values
}
