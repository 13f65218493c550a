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
        self.make_default();
        match self {
            Self::Cpu => Ok(Device::flex()),
            #[cfg(feature = "gpu")]
            Self::Wgpu => Device::wgpu_options().init().map_err(|e| {
                anyhow!("wgpu could not start ({e}); on Linux without a GPU, install Mesa's Vulkan drivers (mesa-vulkan-drivers) or use --device cpu")
            }),
            #[cfg(not(feature = "gpu"))]
            Self::Wgpu => Err(anyhow!(
                "this retrato was built without the GPU backend: build it with --features gpu, or use --device cpu"
            )),
        }
    }

    /// burn creates some tensors (restored optimizer state) on its default device before
    /// moving them; make that the chosen one, so a CPU run never touches the GPU runtime.
    fn make_default(self) {
        // SAFETY: every command picks its device first, before it starts any thread.
        unsafe { std::env::set_var("BURN_DEVICE", self.burn_name()) };
    }

    /// burn's name of the backend (`BURN_DEVICE`), also what benchmarks report.
    pub fn burn_name(self) -> &'static str {
        match self {
            Self::Cpu => "flex",
            Self::Wgpu => "wgpu",
        }
    }
}
