//! The one device chooser of OpsLens: the app, the CLI (`opslens vlm run`) and workers
//! (`opslens worker`) ask it which device the model runs on, from `OPSLENS_DEVICE` (`auto`,
//! `cpu`, `cuda[:N]`, `metal[:N]`), and which weight storage suits that device, from the
//! model's manifest entry unless `OPSLENS_WEIGHTS` says otherwise.
//!
//! `auto` takes CUDA when this build has it and a device answers, Metal likewise, else the
//! CPU. A device asked for by name that cannot be had falls back to the CPU with a note saying
//! why (not built with the feature, no driver or device, later: out of memory while loading),
//! so analysis still runs; the note is logged once and shown by the status route. A value
//! that means nothing (`OPSLENS_DEVICE=tpu`, `OPSLENS_WEIGHTS=q3`) is an error naming the
//! variable and the value: a typo must not silently pick another device or precision.

use candle_core::Device;
use opslens_models::manifest::Quantization;
use opslens_vlm::WeightMode;
use serde::Serialize;
use utoipa::ToSchema;

/// What the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequest {
    /// The best device this build and machine have.
    Auto,
    /// The CPU.
    Cpu,
    /// The n-th CUDA device.
    Cuda(usize),
    /// The n-th Metal device.
    Metal(usize),
}

impl DeviceRequest {
    /// Parses `auto`, `cpu`, `cuda`, `cuda:N`, `metal`, `metal:N` (case-insensitive);
    /// `None` or empty is `auto`.
    pub fn parse(spec: Option<&str>) -> Result<Self, String> {
        let raw = spec.unwrap_or("").trim();
        let s = raw.to_ascii_lowercase();
        let (kind, index) = match s.split_once(':') {
            Some((k, n)) => (
                k.to_string(),
                Some(n.parse::<usize>().map_err(|_| {
                    format!(
                        "OPSLENS_DEVICE={raw}: the device number must be a non-negative integer"
                    )
                })?),
            ),
            None => (s.clone(), None),
        };
        match (kind.as_str(), index) {
            ("" | "auto", None) => Ok(DeviceRequest::Auto),
            ("cpu", None) => Ok(DeviceRequest::Cpu),
            ("cuda" | "gpu", n) => Ok(DeviceRequest::Cuda(n.unwrap_or(0))),
            ("metal", n) => Ok(DeviceRequest::Metal(n.unwrap_or(0))),
            _ => Err(format!(
                "OPSLENS_DEVICE={raw} is not one of auto, cpu, cuda[:N], metal[:N]"
            )),
        }
    }
}

/// The device chosen, its name for people, and why it is not the one asked for (if not).
#[derive(Debug, Clone)]
pub struct ChosenDevice {
    /// The candle device.
    pub device: Device,
    /// `cpu`, `cuda:0`, `metal:0`.
    pub name: String,
    /// Why the request was not met (said once, shown by the status route).
    pub note: Option<String>,
}

/// Memory of a device, in bytes: the GPU's own, or the machine's for the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeviceMemory {
    /// All of it.
    pub total_bytes: u64,
    /// What is free now (available, for the CPU), when the platform says.
    pub free_bytes: Option<u64>,
}

/// What the chosen device is, read from the hardware.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hardware {
    /// Its model name (`NVIDIA H200`, `AMD EPYC 7B13`), when the platform says.
    pub name: Option<String>,
    /// Its memory, when the platform says.
    pub memory: Option<DeviceMemory>,
}

impl ChosenDevice {
    /// Whether this is a GPU (the weights then default to half precision).
    pub fn is_gpu(&self) -> bool {
        !self.device.is_cpu()
    }

    /// The hardware's name and memory, read now (free memory changes as models load).
    pub fn hardware(&self) -> Hardware {
        match &self.device {
            Device::Cpu => cpu_hardware(),
            #[cfg(feature = "cuda")]
            Device::Cuda(d) => cuda_hardware(d),
            _ => Hardware::default(),
        }
    }

    /// The CPU, standing in for this device after `why` (e.g. it ran out of memory loading
    /// the model); the note says what happened.
    pub fn fall_back_to_cpu(&self, why: &str) -> ChosenDevice {
        let note = format!("{} {why}; analysing on the CPU", self.name);
        tracing::warn!("{note}");
        cpu(Some(note))
    }
}

#[cfg(feature = "cuda")]
fn cuda_hardware(d: &candle_core::CudaDevice) -> Hardware {
    // cudarc through candle's own re-export: the same crate and version candle was built with.
    let stream = d.cuda_stream();
    let ctx = stream.context();
    Hardware {
        name: ctx.name().ok(),
        memory: ctx.mem_get_info().ok().map(|(free, total)| DeviceMemory {
            total_bytes: total as u64,
            free_bytes: Some(free as u64),
        }),
    }
}

/// The CPU's model name (with its thread count) and the machine's memory, from /proc on Linux.
fn cpu_hardware() -> Hardware {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let name = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|n| !n.is_empty())
        .map(|n| format!("{n}, {threads} threads"));
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| meminfo(&s));
    Hardware { name, memory }
}

/// `MemTotal` and `MemAvailable` of a /proc/meminfo text.
fn meminfo(s: &str) -> Option<DeviceMemory> {
    let kib = |key: &str| {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|k| k * 1024)
    };
    Some(DeviceMemory {
        total_bytes: kib("MemTotal:")?,
        free_bytes: kib("MemAvailable:"),
    })
}

fn cpu(note: Option<String>) -> ChosenDevice {
    ChosenDevice {
        device: Device::Cpu,
        name: "cpu".into(),
        note,
    }
}

/// A GPU constructor, guarded: a driver library that cannot be loaded panics inside cudarc
/// rather than returning an error, and a missing driver must not take the app down.
fn open(
    what: &str,
    n: usize,
    new: fn(usize) -> candle_core::Result<Device>,
) -> Result<Device, String> {
    match std::panic::catch_unwind(|| new(n)) {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(e)) => Err(format!("{what} device {n} is not usable: {e}")),
        Err(_) => Err(format!(
            "{what} device {n} is not usable: its driver could not be loaded"
        )),
    }
}

fn cuda(n: usize) -> Result<ChosenDevice, String> {
    if !cfg!(feature = "cuda") {
        return Err("this build has no CUDA support (build with `--features cuda`)".into());
    }
    open("CUDA", n, Device::new_cuda).map(|device| ChosenDevice {
        device,
        name: format!("cuda:{n}"),
        note: None,
    })
}

fn metal(n: usize) -> Result<ChosenDevice, String> {
    if !cfg!(feature = "metal") {
        return Err("this build has no Metal support (build with `--features metal`)".into());
    }
    open("Metal", n, Device::new_metal).map(|device| ChosenDevice {
        device,
        name: format!("metal:{n}"),
        note: None,
    })
}

/// Chooses the device for `spec` (the value of `OPSLENS_DEVICE`). A device that cannot be had
/// falls back to the CPU with a note (logged here, once per call: callers choose once); only
/// a value that means nothing is an error.
pub fn choose(spec: Option<&str>) -> Result<ChosenDevice, String> {
    let request = DeviceRequest::parse(spec)?;
    let fallback = |why: String| {
        let note = format!("{why}; analysing on the CPU");
        tracing::warn!("{note}");
        cpu(Some(note))
    };
    Ok(match request {
        DeviceRequest::Cpu => cpu(None),
        DeviceRequest::Cuda(n) => cuda(n).unwrap_or_else(fallback),
        DeviceRequest::Metal(n) => metal(n).unwrap_or_else(fallback),
        // Auto tries quietly: a CPU-only build or machine is the normal case, not a fault.
        DeviceRequest::Auto => cuda(0).or_else(|_| metal(0)).unwrap_or_else(|_| cpu(None)),
    })
}

/// `OPSLENS_WEIGHTS`, parsed: `None` when unset.
pub fn parse_weights(spec: Option<&str>) -> Result<Option<WeightMode>, String> {
    match spec.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => WeightMode::parse(s)
            .map(Some)
            .ok_or_else(|| format!("OPSLENS_WEIGHTS={s} is not one of {}", WeightMode::NAMES)),
    }
}

/// Weight storage for a model on a device: `OPSLENS_WEIGHTS` when set; else on a GPU the
/// first half-precision storage the manifest lists (bf16, then f16; GPUs multiply them
/// natively and the k-quant kernels are CPU-tuned), f32 when it lists neither; on the CPU
/// the manifest's default (the quantized path, fastest there).
pub fn weights_for(q: &Quantization, gpu: bool, spec: Option<&str>) -> Result<WeightMode, String> {
    if let Some(m) = parse_weights(spec)? {
        return Ok(m);
    }
    let listed = |name: &str| q.variants.iter().any(|v| v.eq_ignore_ascii_case(name));
    let pick = if gpu {
        ["bf16", "f16", "f32"]
            .into_iter()
            .find(|m| listed(m))
            .unwrap_or("f32")
    } else {
        q.default.as_str()
    };
    WeightMode::parse(pick).ok_or_else(|| {
        format!("the model manifest names weights {pick:?}, which this build cannot load")
    })
}

/// Whether an engine error means the device ran out of memory (CUDA's
/// `CUDA_ERROR_OUT_OF_MEMORY`, Metal's and the allocators' wordings).
pub fn is_out_of_memory(error: &str) -> bool {
    let e = error.to_ascii_lowercase();
    e.contains("out_of_memory") || e.contains("out of memory") || e.contains("outofmemory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_name_the_variable_and_value() {
        assert_eq!(DeviceRequest::parse(None), Ok(DeviceRequest::Auto));
        assert_eq!(
            DeviceRequest::parse(Some(" AUTO ")),
            Ok(DeviceRequest::Auto)
        );
        assert_eq!(DeviceRequest::parse(Some("cpu")), Ok(DeviceRequest::Cpu));
        assert_eq!(
            DeviceRequest::parse(Some("cuda")),
            Ok(DeviceRequest::Cuda(0))
        );
        assert_eq!(
            DeviceRequest::parse(Some("CUDA:1")),
            Ok(DeviceRequest::Cuda(1))
        );
        assert_eq!(
            DeviceRequest::parse(Some("metal:0")),
            Ok(DeviceRequest::Metal(0))
        );
        for bad in ["tpu", "cuda:x", "cpu:1", "cuda:-1", "Vulkan"] {
            let e = DeviceRequest::parse(Some(bad)).unwrap_err();
            assert!(e.contains(&format!("OPSLENS_DEVICE={bad}")), "{bad}: {e}");
            let e = choose(Some(bad)).unwrap_err();
            assert!(e.contains(&format!("OPSLENS_DEVICE={bad}")), "{bad}: {e}");
        }
    }

    #[test]
    fn an_unavailable_device_falls_back_to_the_cpu_and_says_why() {
        let c = choose(Some("cpu")).unwrap();
        assert_eq!((c.name.as_str(), c.note.is_none()), ("cpu", true));
        assert!(!c.is_gpu());
        if !cfg!(feature = "cuda") {
            let c = choose(Some("cuda:0")).unwrap();
            assert_eq!(c.name, "cpu");
            assert!(c.note.unwrap().contains("no CUDA support"));
        }
        if !cfg!(feature = "metal") {
            let c = choose(Some("metal")).unwrap();
            assert!(c.note.unwrap().contains("no Metal support"));
        }
        if !cfg!(feature = "cuda") && !cfg!(feature = "metal") {
            // Auto on a CPU-only build is not a fault: no note.
            let c = choose(None).unwrap();
            assert_eq!((c.name.as_str(), c.note.is_none()), ("cpu", true));
        }
        let c = choose(Some("cpu"))
            .unwrap()
            .fall_back_to_cpu("ran out of memory loading the model");
        assert_eq!(
            c.note.as_deref(),
            Some("cpu ran out of memory loading the model; analysing on the CPU")
        );
    }

    /// Where a CUDA device answers (scripts/gpu-check), auto takes it and the status can name
    /// the GPU and its memory.
    #[cfg(feature = "cuda")]
    #[test]
    fn auto_takes_a_cuda_device_that_answers_and_names_it() {
        if Device::new_cuda(0).is_err() {
            eprintln!("skipped: no CUDA device answers");
            return;
        }
        let c = choose(None).unwrap();
        assert_eq!((c.name.as_str(), c.note.as_deref()), ("cuda:0", None));
        let h = c.hardware();
        eprintln!("cuda:0 is {h:?}");
        assert!(h.name.is_some_and(|n| !n.is_empty()));
        let m = h.memory.unwrap();
        assert!(m.free_bytes.unwrap() <= m.total_bytes && m.total_bytes > 0);
    }

    #[test]
    fn the_cpu_is_described_from_proc() {
        let m =
            meminfo("MemTotal:       16303300 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\n")
                .unwrap();
        assert_eq!(m.total_bytes, 16_303_300 * 1024);
        assert_eq!(m.free_bytes, Some(8_000_000 * 1024));
        assert_eq!(meminfo("MemFree: 1 kB"), None);
        if cfg!(target_os = "linux") {
            let h = choose(Some("cpu")).unwrap().hardware();
            assert!(h.memory.is_some_and(|m| m.total_bytes > 0), "{h:?}");
        }
    }

    #[test]
    fn weights_suit_the_device_unless_overridden() {
        let q = |default: &str, variants: &[&str]| Quantization {
            default: default.into(),
            variants: variants.iter().map(|v| v.to_string()).collect(),
        };
        let two_b = q("q4k", &["f32", "bf16", "f16", "q8_0", "q6k", "q4k"]);
        assert_eq!(weights_for(&two_b, false, None), Ok(WeightMode::Q4K));
        assert_eq!(weights_for(&two_b, true, None), Ok(WeightMode::BF16));
        let no_bf16 = q("q4k", &["f32", "f16", "q4k"]);
        assert_eq!(weights_for(&no_bf16, true, None), Ok(WeightMode::F16));
        let tiny = q("f32", &["f32"]);
        assert_eq!(weights_for(&tiny, true, None), Ok(WeightMode::F32));
        assert_eq!(weights_for(&tiny, false, None), Ok(WeightMode::F32));
        assert_eq!(
            weights_for(&two_b, true, Some(" Q8_0 ")),
            Ok(WeightMode::Q8_0)
        );
        assert_eq!(weights_for(&two_b, false, Some("")), Ok(WeightMode::Q4K));
        let e = weights_for(&two_b, false, Some("q3")).unwrap_err();
        assert!(e.starts_with("OPSLENS_WEIGHTS=q3 is not one of"), "{e}");
        assert_eq!(parse_weights(None), Ok(None));
    }

    #[test]
    fn out_of_memory_is_recognised_in_its_wordings() {
        assert!(is_out_of_memory(
            "DriverError(CUDA_ERROR_OUT_OF_MEMORY, \"out of memory\")"
        ));
        assert!(is_out_of_memory("Metal: OutOfMemory while allocating"));
        assert!(!is_out_of_memory("no such file: model.safetensors"));
    }
}
