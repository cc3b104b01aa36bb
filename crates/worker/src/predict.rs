//! `kimcnn-torch predict`: sentences on stdin, one a line; a label and the
//! class probabilities for each on stdout, with the tokenizer and vocabulary
//! the model was trained with.

use std::io::{BufRead, Write};
use std::path::Path;

use tch::{Device, Kind};

use crate::stages::load_checked;

pub fn run(args: &[String]) -> Result<(), String> {
    let get = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let model = get("--model").ok_or("--model is required")?;
    let vocab = get("--vocab").ok_or("--vocab is required")?;
    let json = args.iter().any(|a| a == "--json");
    let device = kimcnn_train::parse_device(&get("--device").unwrap_or_else(|| "cpu".into())).map_err(|e| e.to_string())?;
    if let Some(t) = get("--threads") {
        tch::set_num_threads(t.parse().map_err(|_| "--threads takes a number")?);
    }
    let (saved, vocab) = load_checked(Path::new(&model), Path::new(&vocab), device)?;
    let tokenizer = saved.meta.tokenizer.ok_or_else(|| {
        format!("{model}: the model does not record how it tokenized (it was trained without a `tokenizer` input: wire `tokenizer: <tokenize stage>.summary` and train it again)")
    })?;
    let segmenter = kimcnn_subword::Segmenter::new(&tokenizer).map_err(|e| format!("{model}: {e}"))?;
    let index = vocab.index();
    let cfg = &saved.meta.config;
    let classes = &saved.meta.classes;
    let stdin = std::io::stdin();
    let mut lines: Vec<String> = Vec::new();
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let flush = |lines: &mut Vec<String>, out: &mut dyn Write| -> Result<(), String> {
        if lines.is_empty() {
            return Ok(());
        }
        let mut notes = Vec::new();
        let ids: Vec<Vec<i64>> = lines
            .iter()
            .map(|l| {
                let toks = segmenter.tokens(l).map_err(|e| format!("{model}: `{l}`: {e}"))?;
                let mut ids: Vec<i64> = toks.iter().map(|t| index.get(t.as_str()).map(|&i| i as i64).unwrap_or(1)).collect();
                let mut note = None;
                if toks.is_empty() {
                    note = Some("empty sentence".to_string());
                } else if ids.iter().all(|&i| i == 1) {
                    note = Some("no known tokens".to_string());
                }
                if let Some(m) = cfg.max_len {
                    if ids.len() > m {
                        ids.truncate(m);
                        note = Some(format!("truncated to {m} tokens"));
                    }
                }
                notes.push(note);
                Ok(ids)
            })
            .collect::<Result<_, String>>()?;
        let longest = ids.iter().map(Vec::len).max().unwrap_or(0);
        let rows: Vec<&[i64]> = ids.iter().map(Vec::as_slice).collect();
        let x = kimcnn_train::PackedBatch::new(&rows, longest, &cfg.widths, device);
        let probs = tch::no_grad(|| saved.model.forward(&x, false).softmax(1, Kind::Float)).to_device(Device::Cpu).contiguous();
        let probs = Vec::<f32>::try_from(probs.view([-1])).map_err(|e| e.to_string())?;
        let k = classes.len();
        for (i, line) in lines.iter().enumerate() {
            let p = &probs[i * k..(i + 1) * k];
            let best = (0..k).fold(0, |b, c| if p[c] > p[b] { c } else { b });
            if json {
                let probs: serde_json::Map<String, serde_json::Value> =
                    classes.iter().zip(p).map(|(c, &x)| (c.clone(), serde_json::json!(x))).collect();
                let mut o = serde_json::json!({"text": line, "label": classes[best], "probabilities": probs});
                if let Some(n) = &notes[i] {
                    o["note"] = serde_json::json!(n);
                }
                writeln!(out, "{o}").map_err(|e| e.to_string())?;
            } else {
                let all: Vec<String> = classes.iter().zip(p).map(|(c, x)| format!("{c}={x:.3}")).collect();
                let note = notes[i].as_ref().map(|n| format!("  ({n})")).unwrap_or_default();
                writeln!(out, "{}\t{:.3}\t{}{note}", classes[best], p[best], all.join(" ")).map_err(|e| e.to_string())?;
            }
        }
        lines.clear();
        Ok(())
    };
    for line in stdin.lock().lines() {
        lines.push(line.map_err(|e| format!("stdin: {e}"))?);
        if lines.len() == 1000 {
            flush(&mut lines, &mut out)?;
        }
    }
    flush(&mut lines, &mut out)?;
    out.flush().map_err(|e| e.to_string())
}
