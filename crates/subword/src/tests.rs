use super::*;
use kimcnn_schema::Cleaner;

fn texts() -> Vec<String> {
    let base = [
        "영화 정말 재미있어요",
        "영화가 정말 재미없어요",
        "배우들 연기가 좋았어요",
        "배우가 연기를 못해요",
        "the movie was great",
        "the movies were not great",
    ];
    (0..40).flat_map(|i| base.iter().map(move |s| format!("{s} {}", ["", "진짜", "최고", "별로"][i % 4]).trim().to_string())).collect()
}

#[test]
fn every_model_trains_and_cuts_words_into_pieces_that_spell_them() {
    for model in [SubwordModel::Bpe, SubwordModel::WordPiece, SubwordModel::Syllable, SubwordModel::Unigram] {
        let tk = train(model, 60, 2, &texts()).unwrap();
        // WordPiece keeps every character twice (alone and `##` inside a word) beyond its budget.
        let n = tk.get_vocab_size(true);
        assert!(n > 10 && (n <= 60 || model == SubwordModel::WordPiece && n <= 80), "{model}: {n}");
        let words: Vec<String> = ["영화가", "재미있어요", "movies"].map(String::from).to_vec();
        let ps = pieces(&tk, &words).unwrap();
        assert!(ps.len() >= words.len(), "{model}: {ps:?}");
        // The pieces spell the words (the unknown piece aside).
        let spelled: String = ps.iter().map(|p| p.trim_start_matches('▁').trim_start_matches("##")).collect();
        assert_eq!(spelled, words.concat(), "{model}: {ps:?}");
        if model == SubwordModel::Syllable {
            assert_eq!(ps.len(), words.iter().map(|w| w.chars().count()).sum::<usize>(), "{ps:?}");
        }
        // Deterministic: the same text, the same bytes.
        for _ in 0..5 {
            let again = train(model, 60, 2, &texts()).unwrap();
            assert_eq!(tk.to_string(false).unwrap(), again.to_string(false).unwrap(), "{model}");
        }
    }
}

#[test]
fn unseen_characters_become_the_unknown_piece() {
    for model in [SubwordModel::Unigram, SubwordModel::Bpe, SubwordModel::Syllable] {
        let tk = train(model, 60, 2, &texts()).unwrap();
        let ps = pieces(&tk, &["漢".to_string()]).unwrap();
        assert!(ps.iter().any(|p| p == UNK), "{model}: {ps:?}");
    }
    assert!(matches!(train(SubwordModel::Bpe, 60, 2, &[]), Err(SubwordError::Invalid(_))));
}

#[test]
fn a_segmenter_cleans_then_cuts_and_refuses_a_changed_tokenizer() {
    let tk = train(SubwordModel::Unigram, 60, 2, &texts()).unwrap();
    let json = tk.to_string(false).unwrap();
    let mut spec = TokenizerSpec {
        cleaner: Cleaner::Unicode,
        lower: true,
        kim_quirk: false,
        subword: Some(spec_of(SubwordModel::Unigram, json.clone())),
    };
    let s = Segmenter::new(&spec).unwrap();
    let want = pieces(&tk, &["the".to_string(), "movie".to_string(), "!".to_string()]).unwrap();
    assert_eq!(s.tokens("The MOVIE!").unwrap(), want);
    spec.subword.as_mut().unwrap().json = json.replace("\"▁", "\"_");
    let e = Segmenter::new(&spec).err().unwrap().to_string();
    assert!(e.contains("not the one it was trained with"), "{e}");
    let e = load("{\"version\": \"9.0\", \"model\": {\"type\": \"Neural\"}}", "input `tokenizer` (x.json)").unwrap_err().to_string();
    assert!(e.starts_with("input `tokenizer` (x.json): not a tokenizer.json that `tokenizers` 0.23 loads"), "{e}");
}

#[test]
fn canonical_unigram_scores_move_only_the_penalised_characters() {
    // A unigram model written in some hash order: real pieces (one tied at the
    // lowest score), and characters at the lowest score plus k x 1e-4.
    let low = -7.5;
    let vocab = serde_json::json!([
        ["<unk>", 0.0],
        ["▁영화", -3.0],
        ["재미", low],
        ["가", low + 2e-4],
        ["나", low],
        ["다", low + 1e-4],
        ["▁배우", -4.25]
    ]);
    let json = serde_json::json!({"version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [{"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null, "pre_tokenizer": null, "post_processor": null, "decoder": null,
        "model": {"type": "Unigram", "unk_id": 0, "vocab": vocab, "byte_fallback": false}});
    let tk = load(&json.to_string(), "test").unwrap();
    let out: serde_json::Value = serde_json::from_str(&canonical(&tk).unwrap().to_string(false).unwrap()).unwrap();
    let got: Vec<(String, f64)> =
        out["model"]["vocab"].as_array().unwrap().iter().map(|p| (p[0].as_str().unwrap().to_string(), p[1].as_f64().unwrap())).collect();
    let want = [("<unk>", 0.0), ("▁영화", -3.0), ("▁배우", -4.25), ("가", low + 2e-4), ("나", low + 1e-4), ("다", low), ("재미", low)];
    assert_eq!(got.len(), want.len());
    for ((w, s), (ww, ws)) in got.iter().zip(want) {
        assert_eq!(w, ww, "{got:?}");
        assert!((s - ws).abs() < 1e-9, "{w}: {s} vs {ws}");
    }
}
