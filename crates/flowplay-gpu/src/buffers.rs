//! Buffer helpers: creation with labels, and reading results back.
//!
//! Buffer creation is expensive in WebGPU: the trainer and sampler allocate theirs once and reuse
//! them. Reading back goes through `MAP_READ | COPY_DST` staging buffers: [`StagingRing`] never
//! blocks (the web must not block a frame; results are picked up by polling from the frame loop),
//! [`read_blocking`] is for native code that wants the answer now (the CLI, tests).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use wgpu::util::DeviceExt;

use crate::GpuError;

/// Usage of every compute buffer: bound as storage, written from the CPU, copied out.
pub(crate) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// A zeroed storage buffer of `bytes` (at least 16).
pub(crate) fn storage(device: &wgpu::Device, label: &str, bytes: u64) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(4),
        usage: STORAGE,
        mapped_at_creation: false,
    })
}

/// A storage buffer holding `data` (padded to at least 16 bytes).
pub(crate) fn storage_with<T: bytemuck::Pod>(
    device: &wgpu::Device,
    label: &str,
    data: &[T],
) -> wgpu::Buffer {
    let bytes: &[u8] = bytemuck::cast_slice(data);
    let mut padded;
    let contents = if bytes.len() < 16 {
        padded = [0_u8; 16];
        padded[..bytes.len()].copy_from_slice(bytes);
        &padded[..]
    } else {
        bytes
    };
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents,
        usage: STORAGE,
    })
}

/// A uniform buffer holding `value`, rewritable with `queue.write_buffer`.
pub(crate) fn uniform<T: bytemuck::Pod>(
    device: &wgpu::Device,
    label: &str,
    value: &T,
) -> wgpu::Buffer {
    device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some(label),
        contents: bytemuck::bytes_of(value),
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    })
}

/// Copies `bytes` of `src` from `offset` to the CPU, waiting for the GPU (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_blocking(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    src: &wgpu::Buffer,
    offset: u64,
    bytes: u64,
) -> Result<Vec<u8>, GpuError> {
    let bytes = bytes.next_multiple_of(4);
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("flowplay::readback"),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("flowplay::readback"),
    });
    encoder.copy_buffer_to_buffer(src, offset, &staging, 0, bytes);
    queue.submit([encoder.finish()]);
    let (sender, receiver) = std::sync::mpsc::channel();
    staging.map_async(wgpu::MapMode::Read, .., move |result| {
        // The receiver waits below; a failed send only means it gave up.
        let _ = sender.send(result);
    });
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    receiver
        .recv()
        .map_err(|e| GpuError::Readback(e.to_string()))?
        .map_err(|e| GpuError::Readback(e.to_string()))?;
    let data = staging
        .get_mapped_range(..)
        .map_err(|e| GpuError::Readback(e.to_string()))?
        .to_vec();
    staging.unmap();
    Ok(data)
}

/// [`read_blocking`] of `len` elements of `T` from element `offset_elems` (`f32`, `u32`, …).
#[cfg(not(target_arch = "wasm32"))]
pub fn read_pod<T: bytemuck::Pod>(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    src: &wgpu::Buffer,
    offset_elems: u64,
    len: usize,
) -> Result<Vec<T>, GpuError> {
    let size = size_of::<T>();
    let bytes = read_blocking(
        device,
        queue,
        src,
        offset_elems * size as u64,
        (len * size) as u64,
    )?;
    Ok(bytemuck::pod_collect_to_vec(&bytes[..len * size]))
}

/// One read back without blocking: [`Self::encode`] a copy into a fresh staging buffer, submit,
/// [`Self::start`] the mapping, then [`Self::try_take`] from later frames until the bytes arrive.
/// For occasional reads (evaluation samples, weights); the trainer's per-step statistics use
/// [`StagingRing`].
#[derive(Debug)]
pub struct PendingRead {
    buffer: wgpu::Buffer,
    state: Arc<AtomicU8>,
    bytes: u64,
}

impl PendingRead {
    /// Encodes a copy of `bytes` of `src` from `offset` into a new staging buffer.
    pub fn encode(
        device: &wgpu::Device,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        offset: u64,
        bytes: u64,
    ) -> Self {
        let bytes = bytes.next_multiple_of(4).max(4);
        let buffer = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("flowplay::pending_read"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        encoder.copy_buffer_to_buffer(src, offset, &buffer, 0, bytes);
        Self {
            buffer,
            state: Arc::new(AtomicU8::new(PENDING)),
            bytes,
        }
    }

    /// Starts mapping; call after submitting the encoder that holds the copy.
    pub fn start(&self) {
        let state = Arc::clone(&self.state);
        self.buffer
            .map_async(wgpu::MapMode::Read, 0..self.bytes, move |result| {
                state.store(
                    if result.is_ok() { MAPPED } else { FAILED },
                    Ordering::Release,
                );
            });
    }

    /// The bytes, once they have arrived (`None` until then). Never blocks: on native it polls
    /// the device once; in the browser the mapping completes between frames by itself.
    pub fn try_take(&self, device: &wgpu::Device) -> Option<Result<Vec<u8>, GpuError>> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Err(e) = device.poll(wgpu::PollType::Poll) {
            return Some(Err(GpuError::Readback(e.to_string())));
        }
        #[cfg(target_arch = "wasm32")]
        let _ = device;
        match self.state.load(Ordering::Acquire) {
            MAPPED => {
                let data = self
                    .buffer
                    .get_mapped_range(..)
                    .map(|view| view.to_vec())
                    .map_err(|e| GpuError::Readback(e.to_string()));
                self.buffer.unmap();
                self.state.store(FREE, Ordering::Release);
                Some(data)
            }
            FAILED => Some(Err(GpuError::Readback(
                "a staging buffer could not be mapped".into(),
            ))),
            _ => None,
        }
    }
}

const FREE: u8 = 0;
const PENDING: u8 = 1;
const MAPPED: u8 = 2;
const FAILED: u8 = 3;

struct StagingSlot {
    buffer: wgpu::Buffer,
    state: Arc<AtomicU8>,
    bytes: u64,
    tag: u64,
}

/// A ring of staging buffers for reading results back without blocking: copy into a free slot
/// while encoding, [`Self::map_after_submit`] after submitting, and collect with
/// [`Self::collect`] from a later frame (after `device.poll` on native; the browser maps by
/// itself). When every slot is still in flight, [`Self::acquire`] says so and the caller waits a
/// frame instead of blocking.
pub(crate) struct StagingRing {
    slots: Vec<StagingSlot>,
}

impl StagingRing {
    /// `count` slots of `bytes` each.
    pub(crate) fn new(device: &wgpu::Device, label: &str, count: usize, bytes: u64) -> Self {
        let slots = (0..count)
            .map(|_| StagingSlot {
                buffer: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(label),
                    size: bytes.max(4).next_multiple_of(4),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                state: Arc::new(AtomicU8::new(FREE)),
                bytes: 0,
                tag: 0,
            })
            .collect();
        Self { slots }
    }

    /// A free slot, if any.
    pub(crate) fn acquire(&self) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.state.load(Ordering::Acquire) == FREE)
    }

    /// Encodes a copy of `bytes` of `src` into `slot`, tagged `tag` for the caller.
    pub(crate) fn copy(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        slot: usize,
        src: &wgpu::Buffer,
        bytes: u64,
        tag: u64,
    ) {
        let s = &mut self.slots[slot];
        let bytes = bytes.next_multiple_of(4).min(s.buffer.size());
        encoder.copy_buffer_to_buffer(src, 0, &s.buffer, 0, bytes);
        s.bytes = bytes;
        s.tag = tag;
        s.state.store(PENDING, Ordering::Release);
    }

    /// Starts mapping `slot`; call after the submission that holds its copy.
    pub(crate) fn map_after_submit(&self, slot: usize) {
        let s = &self.slots[slot];
        let state = Arc::clone(&s.state);
        s.buffer
            .map_async(wgpu::MapMode::Read, 0..s.bytes, move |result| {
                state.store(
                    if result.is_ok() { MAPPED } else { FAILED },
                    Ordering::Release,
                );
            });
    }

    /// Every slot whose data arrived, oldest tag first, as (tag, bytes); the slots are freed.
    pub(crate) fn collect(&mut self) -> Result<Vec<(u64, Vec<u8>)>, GpuError> {
        let mut out = Vec::new();
        let mut failed = false;
        for s in &mut self.slots {
            match s.state.load(Ordering::Acquire) {
                MAPPED => {
                    let data = s
                        .buffer
                        .get_mapped_range(0..s.bytes)
                        .map_err(|e| GpuError::Readback(e.to_string()))?
                        .to_vec();
                    s.buffer.unmap();
                    s.state.store(FREE, Ordering::Release);
                    out.push((s.tag, data));
                }
                FAILED => {
                    s.state.store(FREE, Ordering::Release);
                    failed = true;
                }
                _ => {}
            }
        }
        if failed {
            return Err(GpuError::Readback(
                "a staging buffer could not be mapped".into(),
            ));
        }
        out.sort_by_key(|(tag, _)| *tag);
        Ok(out)
    }
}
