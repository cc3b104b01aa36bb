//! `kimcnn show STAGE`: a stage's outputs as a person wants to see them:
//! JSON summaries printed, Parquet tables as row counts, schema and a few
//! rows, safetensors as tensor shapes and metadata.

use std::fs::File;
use std::path::Path;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub fn describe(path: &Path, rows: usize) -> Result<String, String> {
    let bytes_head = {
        use std::io::Read;
        let mut f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut head = [0u8; 4];
        let n = f.read(&mut head).map_err(|e| e.to_string())?;
        head[..n].to_vec()
    };
    if bytes_head == b"PAR1" {
        return parquet_summary(path, rows);
    }
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.starts_with(b"<svg") {
        let dims = |k: &str| {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
            text.split(&format!("{k}=\"")).nth(1).and_then(|r| r.split('"').next()).map(String::from).unwrap_or_default()
        };
        return Ok(format!("SVG image, {} x {} px: open it in a browser or image viewer", dims("width"), dims("height")));
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
        return Ok(serde_json::to_string_pretty(&v).unwrap_or_default());
    }
    if let Ok((_, meta)) = safetensors::SafeTensors::read_metadata(&bytes) {
        let mut out = String::new();
        let mut tensors: Vec<_> = meta.tensors().into_iter().collect();
        tensors.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, info) in tensors {
            out.push_str(&format!("tensor {name}: {:?} {:?}\n", info.dtype, info.shape));
        }
        if let Some(m) = meta.metadata() {
            let mut keys: Vec<_> = m.iter().collect();
            keys.sort();
            for (k, v) in keys {
                let v = serde_json::from_str::<serde_json::Value>(v)
                    .map(|j| serde_json::to_string_pretty(&j).unwrap_or_default())
                    .unwrap_or(v.clone());
                out.push_str(&format!("metadata {k}: {v}\n"));
            }
        }
        return Ok(out.trim_end().to_string());
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) if !text.contains('\0') => Ok(text.trim_end().to_string()),
        _ => Ok(format!("{} bytes", bytes.len())),
    }
}

fn parquet_summary(path: &Path, rows: usize) -> Result<String, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| e.to_string())?;
    let total = b.metadata().file_metadata().num_rows();
    let schema = b.schema().clone();
    let mut out = format!("parquet, {total} rows\ncolumns: ");
    out.push_str(&schema.fields().iter().map(|f| format!("{} ({})", f.name(), f.data_type())).collect::<Vec<_>>().join(", "));
    let mut reader = b.with_batch_size(rows.max(1)).build().map_err(|e| e.to_string())?;
    if let Some(batch) = reader.next() {
        let batch = batch.map_err(|e| e.to_string())?;
        let opts = FormatOptions::default();
        let fmts: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for r in 0..batch.num_rows().min(rows) {
            let cells: Vec<String> = schema.fields().iter().zip(&fmts).map(|(f, x)| format!("{}={}", f.name(), x.value(r))).collect();
            out.push_str(&format!("\n  {}", cells.join("  ")));
        }
    }
    Ok(out)
}
