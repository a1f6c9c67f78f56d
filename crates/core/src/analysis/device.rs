//! The one device chooser of OpsLens: the app, the CLI and workers ask it which device the
//! model runs on, from `OPSLENS_DEVICE` (`auto`, `cpu`, `cuda[:N]`, `metal[:N]`).
//!
//! `auto` takes CUDA when this build has it and a device answers, Metal likewise, else the
//! CPU. A device asked for by name that cannot be had falls back to the CPU with a note saying
//! why (not built with the feature, no driver or device), so analysis still runs and the status
//! route can tell the user.

use candle_core::Device;

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
        let s = spec.unwrap_or("").trim().to_ascii_lowercase();
        let (kind, index) = match s.split_once(':') {
            Some((k, n)) => (
                k.to_string(),
                Some(n.parse::<usize>().map_err(|_| {
                    format!("OPSLENS_DEVICE={s}: the device number must be a non-negative integer")
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
                "OPSLENS_DEVICE={s} is not one of auto, cpu, cuda[:N], metal[:N]"
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

fn cpu(note: Option<String>) -> ChosenDevice {
    ChosenDevice {
        device: Device::Cpu,
        name: "cpu".into(),
        note,
    }
}

fn cuda(n: usize) -> Result<ChosenDevice, String> {
    if !cfg!(feature = "cuda") {
        return Err("this build has no CUDA support (build with `--features cuda`)".into());
    }
    Device::new_cuda(n)
        .map(|device| ChosenDevice {
            device,
            name: format!("cuda:{n}"),
            note: None,
        })
        .map_err(|e| format!("CUDA device {n} is not usable: {e}"))
}

fn metal(n: usize) -> Result<ChosenDevice, String> {
    if !cfg!(feature = "metal") {
        return Err("this build has no Metal support (build with `--features metal`)".into());
    }
    Device::new_metal(n)
        .map(|device| ChosenDevice {
            device,
            name: format!("metal:{n}"),
            note: None,
        })
        .map_err(|e| format!("Metal device {n} is not usable: {e}"))
}

/// Chooses the device for `spec` (the value of `OPSLENS_DEVICE`). Never fails: what cannot be
/// had falls back to the CPU with a note.
pub fn choose(spec: Option<&str>) -> ChosenDevice {
    let request = match DeviceRequest::parse(spec) {
        Ok(r) => r,
        Err(e) => return cpu(Some(format!("{e}; using the CPU"))),
    };
    let fallback = |why: String| {
        tracing::warn!("{why}; analysing on the CPU");
        cpu(Some(format!("{why}; analysing on the CPU")))
    };
    match request {
        DeviceRequest::Cpu => cpu(None),
        DeviceRequest::Cuda(n) => cuda(n).unwrap_or_else(fallback),
        DeviceRequest::Metal(n) => metal(n).unwrap_or_else(fallback),
        // Auto tries quietly: a CPU-only build or machine is the normal case, not a fault.
        DeviceRequest::Auto => cuda(0).or_else(|_| metal(0)).unwrap_or_else(|_| cpu(None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_and_bad_ones_name_the_variable() {
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
            DeviceRequest::parse(Some("cuda:1")),
            Ok(DeviceRequest::Cuda(1))
        );
        assert_eq!(
            DeviceRequest::parse(Some("metal:0")),
            Ok(DeviceRequest::Metal(0))
        );
        for bad in ["tpu", "cuda:x", "cpu:1", "cuda:-1"] {
            let e = DeviceRequest::parse(Some(bad)).unwrap_err();
            assert!(e.contains("OPSLENS_DEVICE"), "{bad}: {e}");
        }
    }

    #[test]
    fn an_unavailable_device_falls_back_to_the_cpu_and_says_why() {
        let c = choose(Some("cpu"));
        assert_eq!((c.name.as_str(), c.note.is_none()), ("cpu", true));
        let c = choose(Some("tpu"));
        assert_eq!(c.name, "cpu");
        assert!(c.note.unwrap().contains("OPSLENS_DEVICE=tpu"));
        if !cfg!(feature = "cuda") {
            let c = choose(Some("cuda:0"));
            assert_eq!(c.name, "cpu");
            assert!(c.note.unwrap().contains("no CUDA support"));
            // Auto on a CPU-only build is not a fault: no note.
            let c = choose(None);
            assert_eq!((c.name.as_str(), c.note.is_none()), ("cpu", true));
        }
    }
}
