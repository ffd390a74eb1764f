//! Weights in the safetensors format with the Quick Reference's PyTorch names, loadable with
//! `model.load_state_dict(safetensors.torch.load_file(path))`.
//!
//! Layout of a safetensors file: an 8-byte little-endian header length N, N bytes of JSON
//! (`{"__metadata__": {…}, "<name>": {"dtype": "F32", "shape": […], "data_offsets": [a, b]}, …}`,
//! padded with spaces), then the raw little-endian tensor data; offsets are relative to it. The
//! metadata's `flowplay` entry records the [`ModelSpec`] (t-scale, path, source), which the
//! tensors alone do not tell.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::Error;
use crate::flow::{DataSource, FlowModel, ModelSpec};
use crate::mlp::{Mlp, MlpConfig};
use crate::path::Path;

/// The metadata key holding the JSON model spec.
const SPEC_KEY: &str = "flowplay";

/// Serialises `model` to safetensors bytes.
pub fn to_safetensors(model: &FlowModel) -> Vec<u8> {
    let mut header = Map::new();
    let mut metadata = Map::new();
    metadata.insert("format".into(), Value::String("pt".into()));
    metadata.insert(
        SPEC_KEY.into(),
        Value::String(serde_json::to_string(&model.spec).unwrap_or_default()),
    );
    header.insert("__metadata__".into(), Value::Object(metadata));
    let mut data = Vec::with_capacity(model.params.len() * 4);
    for entry in &model.mlp.layout().entries {
        let start = data.len();
        for v in &model.params[entry.range()] {
            data.extend_from_slice(&v.to_le_bytes());
        }
        let mut info = Map::new();
        info.insert("dtype".into(), Value::String("F32".into()));
        info.insert("shape".into(), Value::from(entry.shape.clone()));
        info.insert("data_offsets".into(), Value::from(vec![start, data.len()]));
        header.insert(entry.name.clone(), Value::Object(info));
    }
    let mut json = Value::Object(header).to_string().into_bytes();
    // Pad so that the data starts 8-byte aligned, as the reference implementation does.
    while !(json.len() + 8).is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + data.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    out
}

/// One tensor read from a file.
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

/// Splits the file into its metadata spec (if any) and tensors, checking every offset.
fn parse(bytes: &[u8]) -> Result<(Option<String>, BTreeMap<String, Tensor>), String> {
    if bytes.len() < 8 {
        return Err(format!(
            "the file is truncated: {} bytes, not even the 8-byte header length",
            bytes.len()
        ));
    }
    let mut len_bytes = [0_u8; 8];
    len_bytes.copy_from_slice(&bytes[..8]);
    let header_len = u64::from_le_bytes(len_bytes);
    let available = (bytes.len() - 8) as u64;
    if header_len > available {
        return Err(format!(
            "this is not a safetensors file, or it is truncated: its header claims \
             {header_len} bytes, but only {available} follow"
        ));
    }
    let header_end = 8 + header_len as usize;
    let header_text = std::str::from_utf8(&bytes[8..header_end])
        .map_err(|_| "the header is not text: this is not a safetensors file".to_owned())?;
    let header: Map<String, Value> = serde_json::from_str(header_text).map_err(|e| {
        format!("the header is not valid JSON ({e}): this is not a safetensors file")
    })?;
    let data = &bytes[header_end..];
    let mut spec = None;
    let mut tensors = BTreeMap::new();
    let mut covered: Vec<(usize, usize, String)> = Vec::new();
    for (name, info) in &header {
        if name == "__metadata__" {
            spec = info
                .get(SPEC_KEY)
                .and_then(Value::as_str)
                .map(str::to_owned);
            continue;
        }
        let dtype = info.get("dtype").and_then(Value::as_str).unwrap_or("?");
        let width = match dtype {
            "F32" => 4,
            "F64" => 8,
            other => {
                return Err(format!(
                    "tensor '{name}' has dtype {other}; flowplay reads F32 (or F64)"
                ));
            }
        };
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("tensor '{name}' has no shape"))?
            .iter()
            .map(|d| d.as_u64().map(|d| d as usize))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("tensor '{name}' has a malformed shape"))?;
        let offsets: Vec<usize> = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| format!("tensor '{name}' has malformed data offsets"))?;
        let [start, end] = offsets[..] else {
            return Err(format!("tensor '{name}' needs two data offsets"));
        };
        let count: usize = shape.iter().product();
        if end < start || end - start != count * width {
            return Err(format!(
                "tensor '{name}' of shape {shape:?} needs {} bytes but its offsets span {}",
                count * width,
                end.saturating_sub(start)
            ));
        }
        if end > data.len() {
            return Err(format!(
                "the file is truncated: tensor '{name}' needs bytes {start}..{end} of the data, \
                 which has only {} bytes",
                data.len()
            ));
        }
        let raw = &data[start..end];
        let values: Vec<f32> = if width == 4 {
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            raw.chunks_exact(8)
                .map(|c| {
                    let mut b = [0_u8; 8];
                    b.copy_from_slice(c);
                    f64::from_le_bytes(b) as f32
                })
                .collect()
        };
        covered.push((start, end, name.clone()));
        tensors.insert(name.clone(), Tensor { shape, values });
    }
    covered.sort();
    for pair in covered.windows(2) {
        if pair[1].0 < pair[0].1 {
            return Err(format!(
                "tensors '{}' and '{}' overlap",
                pair[0].2, pair[1].2
            ));
        }
    }
    Ok((spec, tensors))
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
        assert!(message(&good[..good.len() - 3]).contains("the file is truncated: tensor"));
        assert!(message(b"\x04\0\0\0\0\0\0\0abcd").contains("not valid JSON"));

        // NaN in a weight.
        let mut nan = good.clone();
        let last = nan.len() - 4;
        nan[last..].copy_from_slice(&f32::NAN.to_le_bytes());
        let text = message(&nan);
        assert!(
            text.starts_with("w.safetensors: tensor 'label_embed.weight' holds NaN"),
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
