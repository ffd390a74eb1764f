//! Getting a device, and checking that it can run our kernels.
//!
//! Everything else in this crate takes a `wgpu::Device` and `Queue` it did not create (as wgpu's
//! `hello_compute` splits `execute_gpu_inner` from device creation), so the app can hand over
//! egui's device. [`GpuContext`] is for headless use: the CLI, benchmarks and tests.

use crate::GpuError;

/// Environment variable that makes a missing adapter a test failure instead of a skip
/// (`.ci/run` sets it, since CI installs Mesa's software Vulkan).
pub const REQUIRE_GPU_ENV: &str = "FLOWPLAY_REQUIRE_GPU";

/// Whether [`REQUIRE_GPU_ENV`] is set (to anything but empty or `0`): tests that find no adapter
/// must then fail instead of skipping.
pub fn gpu_required() -> bool {
    std::env::var(REQUIRE_GPU_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The limits every kernel here stays within: WebGPU's defaults.
pub fn required_limits() -> wgpu::Limits {
    wgpu::Limits::default()
}

/// Checks that `limits` allow our compute kernels; the error says which limit is short.
pub fn check_compute_limits(limits: &wgpu::Limits) -> Result<(), GpuError> {
    let need = required_limits();
    let checks = [
        (
            "storage buffers per shader stage",
            limits.max_storage_buffers_per_shader_stage,
            need.max_storage_buffers_per_shader_stage,
        ),
        (
            "invocations per workgroup",
            limits.max_compute_invocations_per_workgroup,
            need.max_compute_invocations_per_workgroup,
        ),
        (
            "workgroup memory (bytes)",
            limits.max_compute_workgroup_storage_size,
            need.max_compute_workgroup_storage_size,
        ),
        (
            "workgroups per dimension",
            limits.max_compute_workgroups_per_dimension,
            need.max_compute_workgroups_per_dimension,
        ),
    ];
    for (what, have, want) in checks {
        if have < want {
            return Err(GpuError::Unavailable(format!(
                "the GPU allows {have} {what}, the kernels need {want} (WebGL has no compute shaders)"
            )));
        }
    }
    Ok(())
}

/// A device and queue of our own, for headless work.
#[derive(Debug)]
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter is (name, backend, device type).
    pub adapter_info: wgpu::AdapterInfo,
}

impl GpuContext {
    /// Requests the best adapter (`WGPU_BACKEND` and `WGPU_ADAPTER_NAME` may choose) and a device
    /// with WebGPU's default limits.
    pub async fn new() -> Result<Self, GpuError> {
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Unavailable(e.to_string()))?;
        check_compute_limits(&adapter.limits())?;
        let adapter_info = adapter.get_info();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("flowplay::device"),
                required_limits: required_limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Unavailable(e.to_string()))?;
        Ok(Self {
            device,
            queue,
            adapter_info,
        })
    }

    /// [`Self::new`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self, GpuError> {
        pollster::block_on(Self::new())
    }

    /// One line describing the adapter: `"llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)"`.
    pub fn describe(&self) -> String {
        let info = &self.adapter_info;
        format!("{} ({:?}, {:?})", info.name, info.backend, info.device_type)
    }
}

/// Without `XDG_RUNTIME_DIR` (a headless session, CI, a container), Mesa's implicit Vulkan layer
/// `VK_LAYER_MESA_device_select` tries to reach a Wayland compositor to order the GPUs, and
/// libwayland prints "error: XDG_RUNTIME_DIR is invalid or not set" twice, for every command that
/// probes the GPU and whether or not it succeeds. The output must be the program's own lines:
/// the layer's own switch `NODEVICE_SELECT=1` turns it off. Harmless: flowplay picks its adapter
/// by power preference, not by the layer's order. Call it first in `main`, before any thread
/// starts (it sets an environment variable).
#[cfg(not(target_arch = "wasm32"))]
pub fn quiet_device_select() {
    let headless = std::env::var_os("XDG_RUNTIME_DIR").is_none_or(|v| v.is_empty());
    if cfg!(target_os = "linux") && headless && std::env::var_os("NODEVICE_SELECT").is_none() {
        #[allow(
            unsafe_code,
            reason = "set_var is unsound only while another thread reads the environment; the \
                      caller runs it first in main, before any thread exists"
        )]
        // SAFETY: the process has one thread here (see the reason above).
        unsafe {
            std::env::set_var("NODEVICE_SELECT", "1");
        }
    }
}
