use std::path::Path;

use kimcnn_schema::ModelMeta;
use safetensors::tensor::{Dtype, TensorView};
use tch::{Device, Kind, Tensor};

use crate::{KimCnn, Result, TrainError};

fn file_err(path: &Path, m: impl ToString) -> TrainError {
    TrainError::File { path: path.into(), message: m.to_string() }
}

/// Writes every weight as f32 safetensors; `meta` (config, classes, vocab
/// hash, tokenizer) goes into the header under one key, `kimcnn`, so the
/// file describes itself and its bytes do not depend on map order.
pub fn save_model(path: &Path, model: &KimCnn, meta: &ModelMeta) -> Result<()> {
    let named = model.named();
    let mut bufs: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (name, t) in named {
        let t = t.detach().to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        let data = Vec::<f32>::try_from(t.view([-1]))?;
        bufs.push((name, shape, data));
    }
    let views: Vec<(String, TensorView)> = bufs
        .iter()
        .map(|(n, s, d)| TensorView::new(Dtype::F32, s.clone(), bytemuck::cast_slice(d)).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| file_err(path, e))?;
    safetensors::tensor::serialize_to_file(views, Some(kimcnn_schema::safetensors_meta(meta)), path).map_err(|e| file_err(path, e))
}

/// A model file read back.
#[derive(Debug)]
pub struct SavedModel {
    pub model: KimCnn,
    pub meta: ModelMeta,
}

pub fn load_model(path: &Path, device: Device) -> Result<SavedModel> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    let bad = |m: String| file_err(path, format!("not a kimcnn model: {m}"));
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta: ModelMeta = kimcnn_schema::meta_from_header(&bytes, path).map_err(|e| bad(e.message))?;
    meta.config.clone().check().map_err(bad)?;
    let (config, classes) = (&meta.config, &meta.classes);
    let get = |name: &str| -> Result<Tensor> {
        let v = st.tensor(name).map_err(|_| bad(format!("no tensor `{name}`")))?;
        if v.dtype() != Dtype::F32 {
            return Err(bad(format!("`{name}` is not f32")));
        }
        let shape: Vec<i64> = v.shape().iter().map(|&d| d as i64).collect();
        let floats: Vec<f32> = v.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(Tensor::from_slice(&floats).view(shape.as_slice()).to(device))
    };
    let emb = get("embedding")?;
    let mut model = KimCnn::new(&emb, classes.len() as i64, config, device);
    model.emb = emb;
    if model.emb_static.is_some() {
        model.emb_static = Some(get("embedding_static")?);
    }
    for (i, w) in config.widths.iter().enumerate() {
        model.conv_w[i] = get(&format!("conv{w}.weight"))?;
        model.conv_b[i] = get(&format!("conv{w}.bias"))?;
    }
    model.out_w = get("out.weight")?;
    model.out_b = get("out.bias")?;
    if model.out_w.size() != [classes.len() as i64, config.maps * config.widths.len() as i64] {
        return Err(bad(format!("out.weight has shape {:?}", model.out_w.size())));
    }
    Ok(SavedModel { model, meta })
}
