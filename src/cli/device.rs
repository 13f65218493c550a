//! `--device`: the one place the CLI picks a backend; the library never does.

use anyhow::{Result, anyhow};
use burn::tensor::Device;

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// burn's flex CPU backend (all cores).
    #[default]
    Cpu,
    /// wgpu: Vulkan, Metal or DX12, whichever the system has.
    Wgpu,
}

impl DeviceChoice {
    /// The device, or a clear error when the GPU runtime cannot start (no adapter, no driver)
    /// instead of a panic on the first tensor.
    pub fn device(self) -> Result<Device> {
        match self {
            Self::Cpu => Ok(Device::flex()),
            Self::Wgpu => Device::wgpu_options().init().map_err(|e| {
                anyhow!("wgpu could not start ({e}); on Linux without a GPU, install Mesa's Vulkan drivers (mesa-vulkan-drivers) or use --device cpu")
            }),
        }
    }
}
