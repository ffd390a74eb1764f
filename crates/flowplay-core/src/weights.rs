//! Weights in the safetensors format with the Quick Reference's PyTorch names, loadable with
//! `model.load_state_dict(safetensors.torch.load_file(path))`.
//!
//! Reading and writing the container is the `safetensors` crate's job (Hugging Face's own
//! implementation, which checks every offset, overlap and size); this module maps tensors to the
//! network's layout, converts F64, F16 and BF16 to f32 (PyTorch users often save half precision),
//! and says in plain words what is wrong with a file that is not a model. The metadata's
//! `flowplay` entry records the [`ModelSpec`] (t-scale, path, source), which the tensors alone do
//! not tell.

use std::collections::BTreeMap;

use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::Error;
use crate::flow::{DataSource, FlowModel, ModelSpec};
use crate::mlp::{Mlp, MlpConfig};
use crate::path::Path;

/// The metadata key holding the JSON model spec.
const SPEC_KEY: &str = "flowplay";

/// The largest weights file read: far above any network this tool trains (hidden 1024, depth 8
/// is about 35 MB in F32), far below what would exhaust memory. A larger file is refused before
/// it is read.
pub const MAX_WEIGHTS_BYTES: u64 = 256 << 20;

/// One tensor to write: f32 values in little-endian bytes.
struct F32Tensor {
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl safetensors::View for &F32Tensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> std::borrow::Cow<'_, [u8]> {
        std::borrow::Cow::Borrowed(&self.bytes)
    }
    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Serialises `model` to safetensors bytes (F32, with the spec and `format: pt` as metadata).
pub fn to_safetensors(model: &FlowModel) -> Vec<u8> {
    let tensors: Vec<(String, F32Tensor)> = model
        .mlp
        .layout()
        .entries
        .iter()
        .map(|entry| {
            let bytes = model.params[entry.range()]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect();
            (
                entry.name.clone(),
                F32Tensor {
                    shape: entry.shape.clone(),
                    bytes,
                },
            )
        })
        .collect();
    let spec = serde_json::to_string(&model.spec).unwrap_or_default();
    let metadata = [
        ("format".to_owned(), "pt".to_owned()),
        (SPEC_KEY.to_owned(), spec),
    ];
    // Serialising can fail only on a header over 100 MB or inconsistent views, neither of which
    // a network's layout can produce.
    let bytes = safetensors::serialize(
        tensors.iter().map(|(name, t)| (name.as_str(), t)),
        Some(metadata.into_iter().collect()),
    )
    .unwrap_or_default();
    canonical(bytes)
}

/// The same file with its header's keys in sorted order: the crate writes the metadata from a
/// hash map, whose order changes from run to run, and the same weights must give the same bytes
/// (a run is reproducible bit for bit). The data and every offset stay as they are.
fn canonical(bytes: Vec<u8>) -> Vec<u8> {
    let Some(n) = bytes
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .and_then(|b| usize::try_from(u64::from_le_bytes(b)).ok())
    else {
        return bytes;
    };
    let Some(Ok(serde_json::Value::Object(header))) = bytes
        .get(8..8 + n)
        .map(serde_json::from_slice::<serde_json::Value>)
    else {
        return bytes;
    };
    let sorted = |map: serde_json::Map<String, serde_json::Value>| {
        let entries: BTreeMap<String, serde_json::Value> = map.into_iter().collect();
        serde_json::Value::Object(entries.into_iter().collect())
    };
    let header: BTreeMap<String, serde_json::Value> = header
        .into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::Object(inner) if k == "__metadata__" => (k, sorted(inner)),
            other => (k, other),
        })
        .collect();
    let mut json = serde_json::Value::Object(header.into_iter().collect())
        .to_string()
        .into_bytes();
    // Pad with spaces so that the data starts 8-byte aligned, as the format recommends.
    json.resize(json.len().next_multiple_of(8), b' ');
    let mut out = Vec::with_capacity(8 + json.len() + bytes.len() - 8 - n);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// One tensor read from a file, converted to f32.
#[derive(Clone, Debug)]
struct Tensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// A model read from a weights file.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The model.
    pub model: FlowModel,
    /// Whether the file recorded its spec (written by flowplay), rather than the spec being
    /// inferred from the tensors and the fallback.
    pub spec_recorded: bool,
}

/// Reads a model from safetensors bytes. `source_name` names the file in errors.
///
/// Without flowplay metadata (weights saved from PyTorch), the network's shape is inferred from
/// the tensors and `fallback` supplies the rest (t-scale, path, source).
pub fn from_safetensors(
    bytes: &[u8],
    source_name: &str,
    fallback: &ModelSpec,
) -> Result<Loaded, Error> {
    let err = |message: String| Error::Weights {
        source_name: source_name.to_owned(),
        message,
    };
    if bytes.len() as u64 > MAX_WEIGHTS_BYTES {
        return Err(err(format!(
            "{} MB is more than the {} MB a weights file may have",
            bytes.len() >> 20,
            MAX_WEIGHTS_BYTES >> 20
        )));
    }
    let (spec_json, tensors) = parse(bytes).map_err(err)?;
    let spec_recorded = spec_json.is_some();
    let spec = match spec_json {
        Some(json) => serde_json::from_str::<ModelSpec>(&json)
            .map_err(|e| err(format!("its flowplay metadata is not understood ({e})")))?,
        None => {
            let mut spec = fallback.clone();
            spec.mlp = infer_mlp(&tensors, fallback.mlp.t_scale).map_err(err)?;
            spec
        }
    };
    spec.mlp.validate().map_err(|e| err(e.to_string()))?;
    spec.path.validate().map_err(|e| err(e.to_string()))?;
    let mlp = Mlp::new(spec.mlp).map_err(|e| err(e.to_string()))?;
    let mut params = vec![0.0; mlp.num_params()];
    for entry in &mlp.layout().entries {
        let tensor = tensors.get(&entry.name).ok_or_else(|| {
            err(format!(
                "tensor '{}' is missing (a network with hidden {}, depth {}, t-dim {} needs it)",
                entry.name, spec.mlp.hidden, spec.mlp.depth, spec.mlp.t_dim
            ))
        })?;
        if tensor.shape != entry.shape {
            return Err(err(format!(
                "tensor '{}' has shape {:?}, expected {:?}",
                entry.name, tensor.shape, entry.shape
            )));
        }
        if let Some(index) = tensor.values.iter().position(|v| !v.is_finite()) {
            return Err(err(format!(
                "tensor '{}' holds {} at index {index}",
                entry.name, tensor.values[index]
            )));
        }
        params[entry.range()].copy_from_slice(&tensor.values);
    }
    if let Some(extra) = tensors
        .keys()
        .find(|name| mlp.layout().entry(name).is_none())
    {
        return Err(err(format!(
            "unexpected tensor '{extra}' (not part of this network)"
        )));
    }
    let model = FlowModel::new(spec, params).map_err(|e| err(e.to_string()))?;
    Ok(Loaded {
        model,
        spec_recorded,
    })
}

/// The shape of a `VectorFieldMLP` from its tensors.
fn infer_mlp(tensors: &BTreeMap<String, Tensor>, t_scale: f32) -> Result<MlpConfig, String> {
    let t1 = tensors
        .get("t_embed.1.weight")
        .ok_or("tensor 't_embed.1.weight' is missing: this is not a VectorFieldMLP")?;
    let [hidden, t_dim] = t1.shape[..] else {
        return Err(format!(
            "tensor 't_embed.1.weight' has shape {:?}, expected [hidden, t_dim]",
            t1.shape
        ));
    };
    let mut layers = 0;
    while tensors.contains_key(&format!("net.{}.weight", 2 * layers)) {
        layers += 1;
    }
    if layers < 2 {
        return Err("the tensors 'net.0.weight' and the output layer are missing".into());
    }
    let num_classes = match tensors.get("label_embed.weight") {
        Some(t) => t.shape.first().copied().unwrap_or(1).saturating_sub(1) as u32,
        None => 0,
    };
    Ok(MlpConfig {
        hidden,
        depth: layers - 1,
        t_dim,
        t_scale,
        num_classes,
    })
}

/// Splits the file into its metadata spec (if any) and tensors converted to f32.
fn parse(bytes: &[u8]) -> Result<(Option<String>, BTreeMap<String, Tensor>), String> {
    let file = SafeTensors::deserialize(bytes).map_err(|e| explain(&e, bytes))?;
    let (_, metadata) = SafeTensors::read_metadata(bytes).map_err(|e| explain(&e, bytes))?;
    let spec = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get(SPEC_KEY))
        .cloned();
    let mut tensors = BTreeMap::new();
    for (name, view) in file.iter() {
        let raw = view.data();
        let values: Vec<f32> = match view.dtype() {
            Dtype::F32 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F64 => raw
                .chunks_exact(8)
                .map(|c| {
                    let mut b = [0_u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b) as f32
                })
                .collect(),
            Dtype::F16 => raw
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            Dtype::BF16 => raw
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            other => {
                return Err(format!(
                    "tensor '{name}' has dtype {other:?}; flowplay reads F32, F64, F16 and BF16"
                ));
            }
        };
        tensors.insert(
            name.to_owned(),
            Tensor {
                shape: view.shape().to_vec(),
                values,
            },
        );
    }
    Ok((spec, tensors))
}

/// The crate's error in plain words, with the sizes that show what is wrong.
fn explain(error: &SafeTensorError, bytes: &[u8]) -> String {
    let not_safetensors = "this is not a safetensors file";
    match error {
        SafeTensorError::HeaderTooSmall => format!(
            "the file is truncated: {} bytes, not even the 8-byte header length",
            bytes.len()
        ),
        SafeTensorError::HeaderTooLarge | SafeTensorError::InvalidHeaderLength => {
            let claimed = bytes
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_le_bytes);
            format!(
                "{not_safetensors}, or it is truncated: its header claims {claimed} bytes, \
                 but only {} follow",
                bytes.len().saturating_sub(8)
            )
        }
        SafeTensorError::InvalidHeader(_) => format!("the header is not text: {not_safetensors}"),
        SafeTensorError::InvalidHeaderDeserialization(e) | SafeTensorError::JsonError(e) => {
            format!("the header is not valid JSON ({e}): {not_safetensors}")
        }
        SafeTensorError::MetadataIncompleteBuffer => match claimed_data_len(bytes) {
            Some((need, have)) if have < need => format!(
                "the file is truncated: its tensors need {need} bytes of data, but only {have} \
                 follow the header"
            ),
            Some((need, have)) => format!(
                "the file has {} bytes after its tensors' {need} bytes of data",
                have - need
            ),
            None => "the file's data does not end where its header says".to_owned(),
        },
        SafeTensorError::InvalidOffset(name) => {
            format!("tensor '{name}' has data offsets that overlap another tensor or leave a gap")
        }
        SafeTensorError::TensorInvalidInfo | SafeTensorError::InvalidTensorView(..) => {
            "a tensor's data offsets do not span its shape times its dtype's size".to_owned()
        }
        SafeTensorError::ValidationOverflow => {
            "a tensor's shape is too large to exist (its size overflows)".to_owned()
        }
        other => format!("{not_safetensors} ({other})"),
    }
}

/// For a file whose data does not end where its header says: the bytes its tensors claim and
/// the bytes that follow the header (only to word the error).
fn claimed_data_len(bytes: &[u8]) -> Option<(usize, usize)> {
    let n = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Value =
        serde_json::from_slice(bytes.get(8..8_usize.checked_add(n)?)?).ok()?;
    let need = header
        .as_object()?
        .values()
        .filter_map(|info| info.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    Some((usize::try_from(need).ok()?, bytes.len() - 8 - n))
}

/// The spec assumed for weights without flowplay metadata: the Quick Reference's
/// rectified flow from N(0, I) on moons, t unscaled.
pub fn default_spec() -> ModelSpec {
    ModelSpec {
        mlp: MlpConfig::default(),
        path: Path::RECTIFIED_FLOW,
        source: DataSource::NORMAL,
        dataset: DataSource::Builtin(crate::data::Dataset::Moons),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> FlowModel {
        let spec = ModelSpec {
            mlp: MlpConfig {
                hidden: 8,
                depth: 2,
                t_dim: 4,
                t_scale: 1000.0,
                num_classes: 2,
            },
            path: Path::VE_DEFAULT,
            ..default_spec()
        };
        let mlp = Mlp::new(spec.mlp).unwrap();
        let params = mlp.init_params(3);
        FlowModel::new(spec, params).unwrap()
    }

    #[test]
    fn round_trip_keeps_everything() {
        let m = model();
        let bytes = to_safetensors(&m);
        // The same bytes every time, in every process (the crate's metadata map is unordered).
        assert_eq!(bytes, to_safetensors(&m));
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = std::str::from_utf8(&bytes[8..8 + header_len]).unwrap();
        assert!(
            header.starts_with(r#"{"__metadata__":{"flowplay":"#),
            "{header}"
        );
        assert_eq!((bytes.len() - 8 - m.params.len() * 4) % 8, 0);
        let loaded = from_safetensors(&bytes, "w", &default_spec()).unwrap();
        assert!(loaded.spec_recorded);
        assert_eq!(loaded.model.params, m.params);
        assert_eq!(loaded.model.spec, m.spec);
    }

    #[test]
    fn without_metadata_the_shape_is_inferred() {
        let m = model();
        let mut bytes = to_safetensors(&m);
        // Remove the metadata's spec by renaming its key (same length keeps offsets valid).
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
        let renamed = header.replacen("\"flowplay\"", "\"flowpla_\"", 1);
        bytes[8..8 + header_len].copy_from_slice(renamed.as_bytes());
        let loaded = from_safetensors(&bytes, "w", &default_spec()).unwrap();
        assert!(!loaded.spec_recorded);
        let back = loaded.model;
        assert_eq!(back.spec.mlp.hidden, 8);
        assert_eq!(back.spec.mlp.depth, 2);
        assert_eq!(back.spec.mlp.t_dim, 4);
        assert_eq!(back.spec.mlp.num_classes, 2);
        assert_eq!(back.spec.path, Path::RECTIFIED_FLOW);
        assert_eq!(back.params, m.params);
    }

    /// The model's tensors re-encoded in `dtype` (as PyTorch's `save_file` writes them after
    /// `.half()`, `.bfloat16()` or `.double()`), without flowplay metadata.
    fn pytorch_file(m: &FlowModel, dtype: Dtype) -> Vec<u8> {
        struct Raw(Dtype, Vec<usize>, Vec<u8>);
        impl safetensors::View for &Raw {
            fn dtype(&self) -> Dtype {
                self.0
            }
            fn shape(&self) -> &[usize] {
                &self.1
            }
            fn data(&self) -> std::borrow::Cow<'_, [u8]> {
                std::borrow::Cow::Borrowed(&self.2)
            }
            fn data_len(&self) -> usize {
                self.2.len()
            }
        }
        let tensors: Vec<(String, Raw)> = m
            .mlp
            .layout()
            .entries
            .iter()
            .map(|e| {
                let values = &m.params[e.range()];
                let bytes = match dtype {
                    Dtype::F16 => values
                        .iter()
                        .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                        .collect(),
                    Dtype::BF16 => values
                        .iter()
                        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
                        .collect(),
                    Dtype::F64 => values
                        .iter()
                        .flat_map(|&v| f64::from(v).to_le_bytes())
                        .collect(),
                    _ => values.iter().flat_map(|&v| v.to_le_bytes()).collect(),
                };
                (e.name.clone(), Raw(dtype, e.shape.clone(), bytes))
            })
            .collect();
        safetensors::serialize(tensors.iter().map(|(n, t)| (n.as_str(), t)), None).unwrap()
    }

    #[test]
    fn half_precision_and_f64_files_load() {
        let m = model();
        for (dtype, tolerance) in [(Dtype::F16, 1e-3), (Dtype::BF16, 8e-3), (Dtype::F64, 0.0)] {
            let bytes = pytorch_file(&m, dtype);
            let loaded = from_safetensors(&bytes, "w", &default_spec()).unwrap();
            assert!(!loaded.spec_recorded);
            for (a, b) in loaded.model.params.iter().zip(&m.params) {
                // Relative to the value: half formats keep 11 (F16) or 8 (BF16) significant bits.
                assert!(
                    (a - b).abs() <= tolerance * b.abs().max(1e-2),
                    "{dtype:?}: {a} vs {b}"
                );
            }
        }
        let text = from_safetensors(&pytorch_file(&m, Dtype::I32), "w", &default_spec())
            .err()
            .unwrap()
            .to_string();
        assert!(
            text.contains("has dtype I32; flowplay reads F32, F64, F16 and BF16"),
            "{text}"
        );
    }

    #[test]
    fn bad_files_are_explained() {
        let m = model();
        let good = to_safetensors(&m);
        let message = |bytes: &[u8]| {
            from_safetensors(bytes, "w.safetensors", &default_spec())
                .err()
                .unwrap()
                .to_string()
        };
        assert!(message(&good[..5]).contains("truncated"));
        let text = message(&good[..good.len() - 3]);
        assert!(
            text.contains("the file is truncated: its tensors need"),
            "{text}"
        );
        let mut longer = good.clone();
        longer.extend_from_slice(&[0; 5]);
        assert!(message(&longer).contains("has 5 bytes after its tensors"));
        assert!(message(b"\x04\0\0\0\0\0\0\0abcd").contains("not valid JSON"));

        // NaN in a weight (the crate lays tensors out by name: the last is t_embed.3).
        let mut nan = good.clone();
        let last = nan.len() - 4;
        nan[last..].copy_from_slice(&f32::NAN.to_le_bytes());
        let text = message(&nan);
        assert!(
            text.starts_with("w.safetensors: tensor 't_embed.3.weight' holds NaN at index 63"),
            "{text}"
        );

        // Wrong shape: weights of another network.
        let mut other = model();
        other.spec.mlp.hidden = 9;
        let mlp = Mlp::new(other.spec.mlp).unwrap();
        other.params = mlp.init_params(1);
        other.mlp = mlp;
        let mut bytes = to_safetensors(&other);
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        let header = String::from_utf8(bytes[8..8 + header_len].to_vec()).unwrap();
        // Claim hidden 8 in the metadata while the tensors are hidden 9.
        let lied = header.replacen("\\\"hidden\\\":9", "\\\"hidden\\\":8", 1);
        assert_ne!(lied, header);
        bytes[8..8 + header_len].copy_from_slice(lied.as_bytes());
        let text = message(&bytes);
        assert!(text.contains("has shape [9, 4], expected [8, 4]"), "{text}");
    }
}
