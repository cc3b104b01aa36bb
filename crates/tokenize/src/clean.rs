use std::sync::OnceLock;

use regex::Regex;

pub use kimcnn_schema::Cleaner;
use kimcnn_schema::TokenizerSpec;

/// The tokens of one sentence, as `spec` says.
pub fn tokenize(spec: &TokenizerSpec, s: &str) -> Vec<String> {
    tokens(spec.cleaner, s, spec.lower, spec.kim_quirk)
}

/// The tokens of one sentence. `lower` lower-cases (Kim: every data set
/// but TREC); `kim_quirk` writes `\(`, `\)`, `\?` as Kim's code did.
pub(crate) fn tokens(cleaner: Cleaner, s: &str, lower: bool, kim_quirk: bool) -> Vec<String> {
    let cleaned = match cleaner {
        Cleaner::Whitespace => s.to_string(),
        Cleaner::KimSst => not_kept_ascii().replace_all(s, " ").into_owned(),
        Cleaner::Kim => split_kim(&not_kept_ascii().replace_all(s, " "), kim_quirk),
        Cleaner::Unicode => split_kim(&not_kept_unicode().replace_all(s, " "), kim_quirk),
    };
    cleaned.split_whitespace().map(|t| if lower { t.to_lowercase() } else { t.to_string() }).collect()
}

fn not_kept_ascii() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"[^A-Za-z0-9(),!?'`]").expect("valid regex"))
}

fn not_kept_unicode() -> &'static Regex {
    static R: OnceLock<Regex> = OnceLock::new();
    R.get_or_init(|| Regex::new(r"[^\p{L}\p{N}\p{M}(),!?'`]").expect("valid regex"))
}

/// The rest of clean_str after the character filter, in Kim's order.
fn split_kim(s: &str, kim_quirk: bool) -> String {
    let mut s = s.to_string();
    for (pat, rep) in [("'s", " 's"), ("'ve", " 've"), ("n't", " n't"), ("'re", " 're"), ("'d", " 'd"), ("'ll", " 'll")] {
        s = s.replace(pat, rep);
    }
    s = s.replace(',', " , ").replace('!', " ! ");
    let bs = if kim_quirk { "\\" } else { "" };
    s.replace('(', &format!(" {bs}( ")).replace(')', &format!(" {bs}) ")).replace('?', &format!(" {bs}? "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(c: Cleaner, s: &str, lower: bool, quirk: bool) -> Vec<String> {
        tokens(c, s, lower, quirk)
    }

    /// Expected outputs produced by the reference implementation's
    /// clean_str / clean_str_sst (../shared/bench/pytorch_kimcnn.py).
    #[test]
    fn matches_kims_clean_str() {
        assert_eq!(
            t(Cleaner::Kim, "It's a GREAT film, isn't it?!", true, false),
            ["it", "'s", "a", "great", "film", ",", "is", "n't", "it", "?", "!"]
        );
        assert_eq!(
            t(Cleaner::Kim, "It's a GREAT film, isn't it?!", false, true),
            ["It", "'s", "a", "GREAT", "film", ",", "is", "n't", "it", "\\?", "!"]
        );
        assert_eq!(t(Cleaner::KimSst, "It's a GREAT film, isn't it?!", true, false), ["it's", "a", "great", "film,", "isn't", "it?!"]);
        assert_eq!(
            t(Cleaner::Kim, "(parenthetical) we'd they'll you're i've", true, false),
            ["(", "parenthetical", ")", "we", "'d", "they", "'ll", "you", "'re", "i", "'ve"]
        );
        assert_eq!(t(Cleaner::Kim, "(x)", true, true), ["\\(", "x", "\\)"]);
        assert_eq!(
            t(Cleaner::Kim, "café naïve — “quotes” `tick` 'single'", true, false),
            ["caf", "na", "ve", "quotes", "`tick`", "'single'"]
        );
        assert_eq!(t(Cleaner::Kim, "don't won't can't shouldn't", true, false), ["do", "n't", "wo", "n't", "ca", "n't", "should", "n't"]);
        assert_eq!(
            t(Cleaner::Kim, "jean-claud van damme or steven segal .", true, false),
            ["jean", "claud", "van", "damme", "or", "steven", "segal"]
        );
        assert_eq!(t(Cleaner::Kim, "a  lot   of\tspace", true, false), ["a", "lot", "of", "space"]);
    }

    #[test]
    fn unicode_keeps_korean_and_accents() {
        assert_eq!(
            t(Cleaner::Unicode, "아 더빙.. 진짜 짜증나네요 목소리!", true, false),
            ["아", "더빙", "진짜", "짜증나네요", "목소리", "!"]
        );
        assert_eq!(t(Cleaner::Unicode, "Café naïve", true, false), ["café", "naïve"]);
        assert!(t(Cleaner::Kim, "아 더빙", true, false).is_empty());
        assert_eq!(t(Cleaner::Whitespace, " a,b  C ", false, false), ["a,b", "C"]);
    }
}
