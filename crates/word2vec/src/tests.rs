use super::*;

/// Two topics that never share a sentence: each word's neighbours are its topic's.
fn sentences(n: usize) -> Vec<Vec<String>> {
    let topics = [["cat", "dog", "pet", "fur", "paw", "tail"], ["car", "road", "wheel", "engine", "fuel", "drive"]];
    let mut rng = Lcg(7);
    (0..n)
        .map(|i| {
            let t = &topics[i % 2];
            (0..8).map(|_| t[(rng.next() >> 16) as usize % t.len()].to_string()).collect()
        })
        .collect()
}

fn settings(arch: Arch) -> Settings {
    Settings { arch, dim: 20, window: 3, negative: 5, min_count: 1, sample: 0.0, epochs: 5, alpha: 0.025, threads: 1, seed: 1 }
}

#[test]
fn both_architectures_learn_which_words_share_contexts() {
    let c = Corpus::new(&sentences(400), 1).unwrap();
    assert_eq!(c.words.len(), 12);
    assert_eq!(c.tokens(), 3200);
    for arch in [Arch::SkipGram, Arch::Cbow] {
        let (v, t) = train(&c, &settings(arch), &|_, _| {});
        assert_eq!(t.words_processed, 5 * 3200);
        for (w, topic) in [("cat", ["dog", "pet", "fur", "paw", "tail"]), ("engine", ["car", "road", "wheel", "fuel", "drive"])] {
            let near = v.nearest(w, 5).unwrap();
            assert!(near.iter().all(|(n, _)| topic.contains(&n.as_str())), "{arch}: {w}: {near:?}");
        }
        // One thread: the same bytes again.
        let (again, _) = train(&c, &settings(arch), &|_, _| {});
        assert!(v.vectors == again.vectors, "{arch}");
    }
}

#[test]
fn sub_sampling_drops_frequent_words_and_threads_share_the_work() {
    let mut s = sentences(400);
    for x in s.iter_mut() {
        x.extend(std::iter::repeat_n("the".to_string(), 8));
    }
    let c = Corpus::new(&s, 1).unwrap();
    assert_eq!(c.words[0], "the", "most frequent first");
    let mut st = settings(Arch::SkipGram);
    st.sample = 1e-2;
    let (_, t) = train(&c, &st, &|_, _| {});
    assert!(t.words_trained < t.words_processed * 3 / 4, "{t:?}");
    st.threads = 2;
    let (v, t) = train(&c, &st, &|_, _| {});
    assert_eq!(t.words_processed, 5 * c.tokens());
    assert!(v.nearest("cat", 3).unwrap().iter().all(|(n, _)| ["dog", "pet", "fur", "paw", "tail", "the"].contains(&n.as_str())));
}

#[test]
fn too_little_text_for_min_count_is_an_error_and_files_round_trip() {
    let e = Corpus::new(&sentences(2), 100).err().unwrap().to_string();
    assert!(e.starts_with("no word occurs `min_count` = 100 times in 16 tokens"), "{e}");
    let c = Corpus::new(&sentences(40), 1).unwrap();
    let (v, _) = train(&c, &settings(Arch::Cbow), &|_, _| {});
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("v.bin");
    v.write_binary(&bin).unwrap();
    let bytes = std::fs::read(&bin).unwrap();
    assert!(bytes.starts_with(b"12 20\n"));
    assert_eq!(bytes.len(), 6 + v.words.iter().map(|w| w.len() + 1 + 80 + 1).sum::<usize>());
    let st = d.path().join("v.safetensors");
    v.write_safetensors(&st).unwrap();
    let data = std::fs::read(&st).unwrap();
    for _ in 0..4 {
        v.write_safetensors(&st).unwrap();
        assert!(std::fs::read(&st).unwrap() == data, "the same bytes every time");
    }
    let t = safetensors::SafeTensors::deserialize(&data).unwrap();
    assert_eq!(t.tensor("vectors").unwrap().shape(), [12, 20]);
}
