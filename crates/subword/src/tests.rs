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
