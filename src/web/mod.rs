//! The page's door into the library (wasm-bindgen). Thin on purpose: it picks the backend
//! once, keeps the loaded generator, and hands RGBA pixels back; every decision about models,
//! latents and pixels is made by the same code the CLI uses.

mod finetune;
mod invert;

use std::cell::RefCell;

use burn::tensor::{Device, Tensor};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::latent;
use crate::model::Generator;
use crate::sample::{latents_tensor, run};
use crate::weights::ModelFile;

/// What runs the model, and why that one.
#[derive(Clone, Serialize)]
pub struct Backend {
    /// "webgpu" or "cpu".
    pub name: String,
    /// One sentence for the page's badge.
    pub reason: String,
    /// The GPU adapter's vendor, architecture and description, as the browser names them.
    pub adapter: String,
    /// A CPU build's note that a hardware adapter is there for the WebGPU build.
    pub webgpu_available: bool,
}

/// Portraits as RGBA bytes, tile after tile, for `ImageData`.
#[derive(Serialize)]
pub struct Portraits {
    pub count: usize,
    pub width: usize,
    pub height: usize,
    #[serde(with = "serde_bytes_as_array")]
    pub rgba: Vec<u8>,
}

/// Sends bytes as a Uint8Array rather than a JS array of numbers.
mod serde_bytes_as_array {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }
}

struct State {
    device: Device,
    backend: Backend,
    generator: Option<Generator>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// Chooses the backend once. `choice` "auto": WebGPU when the browser gives a hardware
/// adapter, else burn's CPU backend compiled to wasm (a software fallback adapter such as
/// SwiftShader is many times slower than the wasm CPU path, measured in bench/web.mjs);
/// "webgpu": any adapter, even a software one; "cpu": the CPU.
///
/// The page ships two builds: this one with the `webgpu` feature (flex + wgpu) and the small
/// CPU-only one it loads first. The CPU build answers "auto" on the CPU and says, with
/// `webgpu_available`, that a hardware adapter is there for the WebGPU build to take over.
#[wasm_bindgen(js_name = initBackend)]
pub async fn init_backend(choice: String) -> Result<JsValue, JsError> {
    if let Some(backend) = STATE.with_borrow(|s| s.as_ref().map(|s| s.backend.clone())) {
        return to_js(&backend);
    }
    let (device, backend) = match choice.as_str() {
        "cpu" => cpu("CPU chosen in the page's settings".into()),
        "auto" | "webgpu" => match webgpu_adapter(choice == "webgpu").await {
            Err(reason) => cpu(format!("WebGPU unavailable ({reason}): running on CPU")),
            Ok(adapter) => start_webgpu(adapter).await?,
        },
        other => {
            return Err(JsError::new(&format!(
                "unknown backend '{other}' (auto, webgpu or cpu)"
            )));
        }
    };
    let reply = to_js(&backend);
    STATE.with_borrow_mut(|s| {
        *s = Some(State {
            device,
            backend,
            generator: None,
        })
    });
    reply
}

/// burn's wgpu device on the browser's adapter, or the CPU with the reason it failed.
#[cfg(feature = "webgpu")]
async fn start_webgpu(adapter: String) -> Result<(Device, Backend), JsError> {
    Ok(match Device::wgpu_options().init_async().await {
        Ok(device) => (
            device,
            Backend {
                name: "webgpu".into(),
                reason: "running on your GPU (WebGPU)".into(),
                adapter,
                webgpu_available: false,
            },
        ),
        Err(e) => cpu(format!("WebGPU failed to start ({e}): running on CPU")),
    })
}

/// The CPU build: the CPU now, and word that the WebGPU build can take over on `adapter`.
#[cfg(not(feature = "webgpu"))]
async fn start_webgpu(adapter: String) -> Result<(Device, Backend), JsError> {
    let (device, mut backend) = cpu(format!(
        "running on the CPU while the WebGPU build loads for {adapter}"
    ));
    backend.webgpu_available = true;
    Ok((device, backend))
}

fn cpu(reason: String) -> (Device, Backend) {
    (
        Device::flex(),
        Backend {
            name: "cpu".into(),
            reason,
            adapter: String::new(),
            webgpu_available: false,
        },
    )
}

/// Asks the browser for an adapter before burn does, so that "no WebGPU" is a clear reason
/// rather than a panic deep in wgpu; returns the adapter's name. A software fallback adapter
/// counts as none unless `accept_fallback`.
async fn webgpu_adapter(accept_fallback: bool) -> Result<String, String> {
    let global = js_sys::global();
    let navigator =
        js_sys::Reflect::get(&global, &"navigator".into()).map_err(|_| "no navigator")?;
    let gpu = js_sys::Reflect::get(&navigator, &"gpu".into()).map_err(|_| "no navigator.gpu")?;
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser has no navigator.gpu".into());
    }
    let request = js_sys::Reflect::get(&gpu, &"requestAdapter".into())
        .ok()
        .and_then(|f| f.dyn_into::<js_sys::Function>().ok())
        .ok_or("navigator.gpu.requestAdapter is missing")?;
    let promise = request.call0(&gpu).map_err(|_| "requestAdapter threw")?;
    let adapter = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::from(promise))
        .await
        .map_err(|_| "requestAdapter failed")?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("no GPU adapter was offered".into());
    }
    let info = js_sys::Reflect::get(&adapter, &"info".into()).unwrap_or(JsValue::UNDEFINED);
    let field = |name: &str| {
        js_sys::Reflect::get(&info, &name.into())
            .ok()
            .and_then(|v| v.as_string())
            .filter(|v| !v.is_empty())
    };
    let parts: Vec<String> = ["vendor", "architecture", "description"]
        .iter()
        .filter_map(|name| field(name))
        .collect();
    let name = match parts.is_empty() {
        true => "unnamed adapter".to_string(),
        false => parts.join(" "),
    };
    let flag = |object: &JsValue| {
        js_sys::Reflect::get(object, &"isFallbackAdapter".into())
            .ok()
            .and_then(|v| v.as_bool())
    };
    let fallback = flag(&info).or_else(|| flag(&adapter)).unwrap_or(false);
    match fallback && !accept_fallback {
        true => Err(format!(
            "the only adapter is a software fallback ({name}), slower than the CPU path; \
             ?backend=webgpu uses it anyway"
        )),
        false => Ok(name),
    }
}

/// Validates a model file's bytes and makes it the current generator; returns its header
/// (family and configuration, dataset, steps, metrics, notes) for the model card.
#[wasm_bindgen(js_name = loadModel)]
pub fn load_model(bytes: &[u8]) -> Result<JsValue, JsError> {
    let file = ModelFile::from_bytes(bytes).map_err(|e| JsError::new(&e.to_string()))?;
    let device = with_state(|s| s.device.clone())?;
    let generator = file
        .generator(&device)
        .map_err(|e| JsError::new(&e.to_string()))?;
    STATE.with_borrow_mut(|s| s.as_mut().map(|s| s.generator = Some(generator)));
    to_js(&file.header)
}

/// Portraits `first..first + count` of `seed` (a decimal string: seeds are u64, beyond
/// JavaScript's exact integers), the same as `retrato sample --seed` gives.
#[wasm_bindgen]
pub async fn generate(seed: String, first: u32, count: u32) -> Result<JsValue, JsError> {
    let seed = parse_seed(&seed)?;
    portraits_of(|dim| latent::latents(seed, first as u64, count as usize, dim)).await
}

/// A portrait the page points at: one of a seed's, or one with a latent of its own (a
/// photo's, found by `invertStep`).
#[derive(Deserialize)]
#[serde(untagged)]
enum Portrait {
    Seeded { seed: String, index: u32 },
    Latent { latent: Vec<f32> },
}

impl Portrait {
    fn from_js(value: JsValue) -> Result<Self, JsError> {
        serde_wasm_bindgen::from_value(value)
            .map_err(|_| JsError::new("a portrait is { seed, index } or { latent: [numbers] }"))
    }

    /// Its latent for a model taking `dim` values.
    fn latent(&self, dim: usize) -> Result<Vec<f32>, JsError> {
        match self {
            Portrait::Seeded { seed, index } => {
                Ok(latent::latent(parse_seed(seed)?, *index as u64, dim))
            }
            Portrait::Latent { latent } if latent.len() == dim => Ok(latent.clone()),
            Portrait::Latent { latent } => Err(JsError::new(&format!(
                "this portrait's latent has {} values but the model takes {dim}: a latent \
                 draws the same face only in its model and the models fine-tuned from it",
                latent.len()
            ))),
        }
    }
}

/// The portraits of `latents` (row-major, the model's latent size each).
#[wasm_bindgen(js_name = drawLatents)]
pub async fn draw_latents(latents: Vec<f32>) -> Result<JsValue, JsError> {
    let dim = current_latent_dim()?;
    if latents.is_empty() || !latents.len().is_multiple_of(dim) {
        return Err(JsError::new(&format!(
            "{} latent values are not whole latents of {dim}: a latent draws the same face \
             only in its model and the models fine-tuned from it",
            latents.len()
        )));
    }
    portraits_of(|_| latents).await
}

/// `count` variations of `portrait` (`retrato sample --variations-of` for a seed's).
#[wasm_bindgen]
pub async fn variations(portrait: JsValue, count: u32, strength: f32) -> Result<JsValue, JsError> {
    let portrait = Portrait::from_js(portrait)?;
    let dim = current_latent_dim()?;
    let latents = match &portrait {
        Portrait::Seeded { seed, index } => latent::variations(
            parse_seed(seed)?,
            *index as u64,
            dim,
            count as usize,
            strength,
        ),
        Portrait::Latent { .. } => {
            latent::variations_of(&portrait.latent(dim)?, count as usize, strength)
        }
    };
    portraits_of(|_| latents).await
}

/// `frames` portraits morphing `from` into `to` along the sphere of latent space (both ends
/// included).
#[wasm_bindgen]
pub async fn interpolate(from: JsValue, to: JsValue, frames: u32) -> Result<JsValue, JsError> {
    let dim = current_latent_dim()?;
    let a = Portrait::from_js(from)?.latent(dim)?;
    let b = Portrait::from_js(to)?.latent(dim)?;
    portraits_of(|_| latent::interpolation(&a, &b, frames as usize)).await
}

fn current_latent_dim() -> Result<usize, JsError> {
    with_state(|s| s.generator.as_ref().map(Generator::latent_dim))?
        .ok_or_else(|| JsError::new("no model loaded"))
}

fn parse_seed(seed: &str) -> Result<u64, JsError> {
    seed.trim().parse().map_err(|_| {
        JsError::new(&format!(
            "seed must be a whole number from 0 to {}, not '{seed}'",
            u64::MAX
        ))
    })
}

/// Runs the current generator on the latents `make(latent_dim)` gives (row-major), as RGBA.
async fn portraits_of(make: impl FnOnce(usize) -> Vec<f32>) -> Result<JsValue, JsError> {
    let (device, generator) = with_state(|s| (s.device.clone(), s.generator.clone()))?;
    let generator = generator.ok_or_else(|| JsError::new("no model loaded"))?;
    portraits(&generator, &device, make).await
}

/// Runs `generator` (on `device`) on the latents `make(latent_dim)` gives, as RGBA.
async fn portraits(
    generator: &Generator,
    device: &Device,
    make: impl FnOnce(usize) -> Vec<f32>,
) -> Result<JsValue, JsError> {
    let dim = generator.latent_dim();
    let z = latents_tensor(make(dim), dim, device);
    let images: Tensor<4> = run(generator, z, false);
    let [n, c, h, w] = images.dims();
    // [N, C, H, W] → [N, H, W, C] bytes, done on the device so only bytes cross back.
    let bytes = (images.permute([0, 2, 3, 1]) * 255.0 + 0.5).clamp(0.0, 255.0);
    let data = bytes
        .into_data_async()
        .await
        .map_err(|e| JsError::new(&format!("reading the portraits back failed: {e:?}")))?;
    let values = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| JsError::new(&format!("{e:?}")))?;
    let mut rgba = Vec::with_capacity(n * h * w * 4);
    for pixel in values.chunks_exact(c) {
        let channel = |k: usize| pixel[k.min(c - 1)] as u8;
        rgba.extend([channel(0), channel(1), channel(2), 255]);
    }
    to_js(&Portraits {
        count: n,
        width: w,
        height: h,
        rgba,
    })
}

/// `count` RGB8 pictures of `width`x`height`, tile after tile, as [`Portraits`].
fn rgba_portraits(count: usize, width: usize, height: usize, rgb: &[u8]) -> Portraits {
    let rgba = rgb
        .chunks_exact(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect();
    Portraits {
        count,
        width,
        height,
        rgba,
    }
}

fn with_state<T>(f: impl FnOnce(&State) -> T) -> Result<T, JsError> {
    STATE
        .with_borrow(|s| s.as_ref().map(f))
        .ok_or_else(|| JsError::new("initBackend() must be called first"))
}

/// Plain JS objects for maps (metrics), not `Map`s, so the page reads `metrics.fid`; bytes
/// stay a `Uint8Array`.
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    let serializer = serde_wasm_bindgen::Serializer::new().serialize_maps_as_objects(true);
    value
        .serialize(&serializer)
        .map_err(|e| JsError::new(&e.to_string()))
}
