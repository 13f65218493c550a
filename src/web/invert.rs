//! "Use my photo": the photo decoded and turned upright once (the same decoder as training),
//! the square the visitor placed cut out at the model's size, and the library's [`Inverter`]
//! driven a few steps per call so the page can draw the reconstruction as it improves. The
//! photo stays in this worker's memory until the next one or [`close_photo`].

use std::cell::RefCell;

use burn::tensor::Tensor;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::{Portraits, portraits, rgba_portraits, to_js, with_state};
use crate::data::{Square, crop_square, decode_upright};
use crate::invert::{InvertOptions, Inverter, best_start};
use crate::model::{Discriminator, Generator};
use crate::train::params::{Values, read_values};
use crate::weights::ModelFile;

/// The longer side of the picture the page shows for placing the square.
const PREVIEW_SIDE: u32 = 480;

/// A search in progress and a plain copy of its generator for drawing the best start.
struct Search {
    inverter: Inverter,
    generator: Generator,
}

thread_local! {
    static PHOTO: RefCell<Option<RgbImage>> = const { RefCell::new(None) };
    static SEARCH: RefCell<Option<Search>> = const { RefCell::new(None) };
}

/// What the page needs to let the visitor place the square.
#[derive(Serialize)]
struct Opened {
    /// The upright photo's size, the frame of the square.
    width: u32,
    height: u32,
    /// Where the square starts: the largest centred one.
    square: Square,
    /// The upright photo scaled down to at most [`PREVIEW_SIDE`] pixels.
    preview: Portraits,
}

/// Decodes and keeps a photo (turned upright by its EXIF orientation); the reason when it
/// cannot be used.
#[wasm_bindgen(js_name = openPhoto)]
pub fn open_photo(bytes: &[u8]) -> Result<JsValue, JsError> {
    let picture = decode_upright(bytes).map_err(error)?;
    let (width, height) = picture.dimensions();
    let shown = crate::data::crop::preview(&picture, PREVIEW_SIDE);
    let preview = rgba_portraits(1, shown.width() as usize, shown.height() as usize, &shown);
    PHOTO.with_borrow_mut(|p| *p = Some(picture));
    to_js(&Opened {
        width,
        height,
        square: Square::centred(width, height),
        preview,
    })
}

/// Forgets the photo and any search on it.
#[wasm_bindgen(js_name = closePhoto)]
pub fn close_photo() {
    PHOTO.with_borrow_mut(|p| *p = None);
    SEARCH.with_borrow_mut(|s| *s = None);
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartOptions {
    steps: Option<usize>,
    starts: Option<usize>,
    seed: Option<u64>,
}

#[derive(Serialize)]
struct Started {
    /// The square as the model sees it.
    target: Portraits,
    steps: usize,
    starts: usize,
}

/// Starts a search for `square` of the open photo in `model` (a model file's bytes), with
/// `discriminator`'s features in the loss when given; the options default to the CLI's.
#[wasm_bindgen(js_name = invertStart)]
pub fn invert_start(
    model: &[u8],
    discriminator: Option<Vec<u8>>,
    square: JsValue,
    options: JsValue,
) -> Result<JsValue, JsError> {
    let square: Square = serde_wasm_bindgen::from_value(square)?;
    let options: StartOptions = serde_wasm_bindgen::from_value(options)?;
    let device = with_state(|s| s.device.clone())?;
    let file = ModelFile::from_bytes(model).map_err(error)?;
    let generator = file.generator(&device.clone().autodiff()).map_err(error)?;
    let discriminator = match discriminator {
        Some(bytes) => Some(read_discriminator(
            &bytes,
            &file,
            &device.clone().autodiff(),
        )?),
        None => None,
    };
    let size = file.header.model.image_size();
    let pixels = PHOTO
        .with_borrow(|p| p.as_ref().map(|p| crop_square(p, square, size as u32)))
        .ok_or_else(|| JsError::new("no photo is open"))?
        .map_err(error)?;
    let defaults = InvertOptions::default();
    let options = InvertOptions {
        steps: options.steps.unwrap_or(defaults.steps),
        starts: options.starts.unwrap_or(defaults.starts),
        seed: options.seed.unwrap_or(defaults.seed),
        ..defaults
    };
    let reply = to_js(&Started {
        target: rgba_portraits(1, size, size, &pixels),
        steps: options.steps,
        starts: options.starts,
    });
    let target = crate::data::Dataset::new(pixels, size).batch(
        &[0],
        &[false],
        crate::data::Range::ZeroToOne,
        &generator.device(),
    );
    let inverter = Inverter::new(&generator, discriminator.as_ref(), target, options)
        .map_err(|e| JsError::new(&e))?;
    let search = Search {
        inverter,
        generator: generator.valid(),
    };
    SEARCH.with_borrow_mut(|s| *s = Some(search));
    reply
}

/// Where the search is after a call, with the best start so far drawn.
#[derive(Serialize)]
struct Progress {
    step: usize,
    steps: usize,
    /// The best start's loss (pixels + discriminator features) at the last step.
    loss: f64,
    /// Its latent: `retrato sample --latents` draws it too.
    latent: Vec<f32>,
    #[serde(with = "serde_wasm_bindgen::preserve")]
    portrait: JsValue,
}

/// Runs up to `count` more steps and draws the best start.
#[wasm_bindgen(js_name = invertStep)]
pub async fn invert_step(count: u32) -> Result<JsValue, JsError> {
    let mut search = SEARCH
        .with_borrow_mut(Option::take)
        .ok_or_else(|| JsError::new("no search in progress (or a call on it is still going)"))?;
    let progress = steps(&mut search, count).await;
    SEARCH.with_borrow_mut(|s| *s = Some(search));
    to_js(&progress?)
}

async fn steps(search: &mut Search, count: u32) -> Result<Progress, JsError> {
    let mut ran = 0;
    while ran < count.max(1) && !search.inverter.done() {
        search.inverter.step();
        ran += 1;
    }
    let (z, losses) = search.inverter.state();
    let losses = losses.ok_or_else(|| JsError::new("the search has not run a step"))?;
    let z: Tensor<1> = z.flatten(0, 1);
    let mut read = read_values(Values(vec![z, losses]))
        .await
        .map_err(|e| JsError::new(&e))?;
    let losses = read.pop().expect("two values");
    let best = best_start(&read.pop().expect("two values"), &losses);
    let device = search.generator.device();
    let portrait = portraits(&search.generator, &device, |_| best.latent.clone()).await?;
    Ok(Progress {
        step: search.inverter.step,
        steps: search.inverter.options().steps,
        loss: best.loss,
        latent: best.latent,
        portrait,
    })
}

/// Ends the search and frees its memory (the photo stays open for another square).
#[wasm_bindgen(js_name = invertEnd)]
pub fn invert_end() {
    SEARCH.with_borrow_mut(|s| *s = None);
}

/// The discriminator in `bytes`, which must be `file`'s architecture.
fn read_discriminator(
    bytes: &[u8],
    file: &ModelFile,
    device: &burn::tensor::Device,
) -> Result<Discriminator, JsError> {
    let d_file = ModelFile::from_bytes(bytes).map_err(error)?;
    (d_file.discriminator_for(file, device))
        .map_err(|e| JsError::new(&format!("the model's discriminator file: {e}")))
}

fn error(e: impl ToString) -> JsError {
    JsError::new(&e.to_string())
}
