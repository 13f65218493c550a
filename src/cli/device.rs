//! `--device`: the one place the CLI picks a backend; the library never does.

use burn::tensor::{Device, DeviceKind};

#[derive(Clone, Copy, Debug, Default, clap::ValueEnum)]
pub enum DeviceChoice {
    /// burn's flex CPU backend (all cores).
    #[default]
    Cpu,
    /// wgpu: Vulkan, Metal or DX12, whichever the system has.
    Wgpu,
    /// NVIDIA CUDA (build with `--features cuda`).
    #[cfg(feature = "cuda")]
    Cuda,
}

impl DeviceChoice {
    pub fn device(self) -> Device {
        match self {
            Self::Cpu => Device::flex(),
            Self::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
            #[cfg(feature = "cuda")]
            Self::Cuda => Device::cuda(0),
        }
    }
}
