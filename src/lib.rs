//! retrato: portrait-generating GANs that run in the browser (WebGPU, or CPU in wasm) and on
//! the command line, from one library. See `DESIGN.md` in the shared notes for the layout.

#[cfg(not(target_arch = "wasm32"))]
pub mod atomic;
pub mod data;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod eval;
pub mod image_grid;
pub mod invert;
pub mod latent;
pub mod model;
pub mod sample;
pub mod tensor_bytes;
pub mod train;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod web;
