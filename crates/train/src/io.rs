use std::collections::HashMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float32Builder, Float64Array, ListBuilder, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, UInt32Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use safetensors::tensor::{Dtype, TensorView};
use tch::{Device, Kind, Tensor};

use crate::{Config, Epoch, KimCnn, Prediction, Result, TrainError};

fn file_err(path: &Path, m: impl ToString) -> TrainError {
    TrainError::File { path: path.into(), message: m.to_string() }
}

/// Writes every weight as f32 safetensors; `meta` (config, classes, vocab
/// hash, tokenizer) goes into the header under one key, `kimcnn`, so the
/// file describes itself and its bytes do not depend on map order.
pub fn save_model(path: &Path, model: &KimCnn, meta: &serde_json::Value) -> Result<()> {
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
    let meta = HashMap::from([("kimcnn".to_string(), meta.to_string())]);
    safetensors::tensor::serialize_to_file(views, Some(meta), path).map_err(|e| file_err(path, e))
}

/// A model file read back.
#[derive(Debug)]
pub struct SavedModel {
    pub model: KimCnn,
    pub config: Config,
    pub classes: Vec<String>,
    pub meta: serde_json::Value,
}

pub fn load_model(path: &Path, device: Device) -> Result<SavedModel> {
    let bytes = std::fs::read(path).map_err(|e| file_err(path, e))?;
    let bad = |m: String| file_err(path, format!("not a kimcnn model: {m}"));
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).map_err(|e| bad(e.to_string()))?;
    let meta: serde_json::Value = header
        .metadata()
        .as_ref()
        .and_then(|m| m.get("kimcnn"))
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| bad("no `kimcnn` metadata".into()))?;
    let config = Config::from_json(&meta["config"]).map_err(|e| bad(e.to_string()))?;
    let classes: Vec<String> = serde_json::from_value(meta["classes"].clone()).map_err(|e| bad(format!("classes: {e}")))?;
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
    let mut model = KimCnn::new(&emb, classes.len() as i64, &config, device);
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
    Ok(SavedModel { model, config, classes, meta })
}

fn write_batch(path: &Path, schema: Arc<Schema>, cols: Vec<ArrayRef>) -> Result<()> {
    let batch = RecordBatch::try_new(schema.clone(), cols).map_err(|e| file_err(path, e))?;
    let f = File::create(path).map_err(|e| file_err(path, e))?;
    let props = WriterProperties::builder().set_compression(Compression::SNAPPY).build();
    let mut w = ArrowWriter::try_new(f, schema, Some(props)).map_err(|e| file_err(path, e))?;
    w.write(&batch).map_err(|e| file_err(path, e))?;
    w.close().map_err(|e| file_err(path, e))?;
    Ok(())
}

const HISTORY_F64: [&str; 6] = ["train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "seconds", "sentences_per_s"];

pub fn write_history(path: &Path, h: &[Epoch]) -> Result<()> {
    let mut fields = vec![Field::new("epoch", DataType::UInt32, false)];
    fields.extend(HISTORY_F64.iter().map(|n| Field::new(*n, DataType::Float64, false)));
    let f64col = |f: fn(&Epoch) -> f64| Arc::new(Float64Array::from_iter_values(h.iter().map(f))) as ArrayRef;
    let cols = vec![
        Arc::new(UInt32Array::from_iter_values(h.iter().map(|e| e.epoch as u32))) as ArrayRef,
        f64col(|e| e.train_loss),
        f64col(|e| e.train_accuracy),
        f64col(|e| e.dev_loss),
        f64col(|e| e.dev_accuracy),
        f64col(|e| e.seconds),
        f64col(|e| e.sentences_per_s),
    ];
    write_batch(path, Arc::new(Schema::new(fields)), cols)
}

pub fn read_history(path: &Path) -> Result<Vec<Epoch>> {
    let f = File::open(path).map_err(|e| file_err(path, e))?;
    let r = ParquetRecordBatchReaderBuilder::try_new(f).and_then(|b| b.build()).map_err(|e| file_err(path, e))?;
    let mut out = Vec::new();
    for b in r {
        let b = b.map_err(|e| file_err(path, e))?;
        let col = |n: &str| b.column_by_name(n).cloned().ok_or_else(|| file_err(path, format!("no `{n}` column")));
        let ep = col("epoch")?;
        let ep = ep.as_primitive_opt::<UInt32Type>().ok_or_else(|| file_err(path, "epoch is not u32"))?.clone();
        let mut vals = Vec::new();
        for n in HISTORY_F64 {
            let c = col(n)?;
            vals.push(c.as_primitive_opt::<Float64Type>().ok_or_else(|| file_err(path, format!("{n} is not f64")))?.clone());
        }
        for i in 0..b.num_rows() {
            out.push(Epoch {
                epoch: ep.value(i) as usize,
                train_loss: vals[0].value(i),
                train_accuracy: vals[1].value(i),
                dev_loss: vals[2].value(i),
                dev_accuracy: vals[3].value(i),
                seconds: vals[4].value(i),
                sentences_per_s: vals[5].value(i),
            });
        }
    }
    Ok(out)
}

pub fn write_predictions(path: &Path, p: &[Prediction]) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt32, false),
        Field::new("gold", DataType::Utf8, false),
        Field::new("predicted", DataType::Utf8, false),
        Field::new("probabilities", DataType::List(Arc::new(Field::new("item", DataType::Float32, true))), false),
    ]));
    let mut probs = ListBuilder::new(Float32Builder::new());
    for x in p {
        probs.values().append_slice(&x.probabilities);
        probs.append(true);
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(UInt32Array::from_iter_values(p.iter().map(|x| x.id))),
        Arc::new(StringArray::from_iter_values(p.iter().map(|x| &x.gold))),
        Arc::new(StringArray::from_iter_values(p.iter().map(|x| &x.predicted))),
        Arc::new(probs.finish()),
    ];
    write_batch(path, schema, cols)
}
