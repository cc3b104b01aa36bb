use super::*;

fn clusters(n: usize) -> Array2<f32> {
    // Two clusters of points on a sphere's cap, around +e0 and -e0.
    Array2::from_shape_fn((n, 5), |(i, j)| {
        let side = if i % 2 == 0 { 1.0 } else { -1.0 };
        if j == 0 {
            side
        } else {
            ((i * 7 + j * 13) % 11) as f32 / 40.0
        }
    })
}

#[test]
fn nearest_neighbours_are_exact_and_break_ties_by_index() {
    let m = Array2::from_shape_vec((4, 1), vec![0.0, 1.0, 1.0, 3.0]).unwrap();
    let nn = nearest(&m, 2);
    let ids = |i: usize| nn[i].iter().map(|x| x.index).collect::<Vec<_>>();
    assert_eq!(ids(0), [1, 2], "1 and 2 tie: the lower index first");
    assert_eq!(ids(1), [2, 0]);
    assert_eq!(ids(3), [1, 2]);
    assert_eq!(nn[3][0].distance, 2.0);
}

#[test]
fn nearest_neighbours_do_not_depend_on_the_thread_count() {
    let rows = unit_rows(&clusters(80), &(0..80).collect::<Vec<_>>());
    let on = |threads: usize| rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap().install(|| nearest(&rows, 12));
    let key = |nn: Vec<Vec<bhtsne::Neighbor<f32>>>| nn.iter().flatten().map(|n| (n.index, n.distance.to_bits())).collect::<Vec<_>>();
    assert_eq!(key(on(1)), key(on(4)));
}

#[test]
fn a_fit_is_the_same_bytes_every_time_and_separates_clusters() {
    let rows = unit_rows(&clusters(60), &(0..60).collect::<Vec<_>>());
    let nn = nearest(&rows, 15);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let normal = Normal::new(0.0f32, 1e-4).unwrap();
    let init: Vec<f32> = (0..120).map(|_| normal.sample(&mut rng)).collect();
    let steps = std::sync::Mutex::new(Vec::new());
    let (a, kl) = fit(&rows, &nn, &init, 5.0, 0.5, 300, &|e| steps.lock().unwrap().push(e)).unwrap();
    assert_eq!(*steps.lock().unwrap(), [50, 100, 150, 200, 250, 300]);
    let (b, _) = fit(&rows, &nn, &init, 5.0, 0.5, 300, &|_| ()).unwrap();
    assert_eq!(a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), b.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    assert!(kl.is_finite() && kl >= 0.0, "{kl}");
    // Each point's nearest point on the map is of its own cluster.
    let d = |i: usize, j: usize| (a[2 * i] - a[2 * j]).powi(2) + (a[2 * i + 1] - a[2 * j + 1]).powi(2);
    let own = (0..60)
        .filter(|&i| (0..60).filter(|&j| j != i).min_by(|&x, &y| d(i, x).total_cmp(&d(i, y))).is_some_and(|j| j % 2 == i % 2))
        .count();
    assert!(own >= 57, "{own} of 60");
}

#[test]
fn class_shares_count_sentences_not_occurrences() {
    let tokens = TokensTable {
        id: vec![0, 1, 2, 3, 4],
        label: vec!["pos".into(), "neg".into(), "pos".into(), "neg".into(), "neg".into()],
        tokens: vec![
            vec!["good".into(), "good".into()],
            vec!["bad".into(), "good".into()],
            vec!["fine".into()],
            vec!["fine".into()],
            vec!["fine".into()],
        ],
        split: vec!["train".into(), "train".into(), "train".into(), "test".into(), "train".into()],
        fold: vec![0, 1, 2, -1, 3],
        origin: (1..=5).map(|i| format!("x:{i}")).collect(),
    };
    let vocab = Vocab { tokens: ["<pad>", "<unk>", "good", "bad", "fine"].map(String::from).to_vec(), counts: vec![0, 0, 3, 1, 1] };
    // Row 3 is a test sentence, row 4 the model's own test fold: neither counts.
    let (classes, s) = class_shares(&tokens, &vocab, &[2, 3, 4], Some(3));
    assert_eq!(classes, ["neg", "pos"]);
    assert_eq!(s[0], (0.5, "neg".to_string()), "a tie goes to the first class");
    assert_eq!(s[1], (0.0, "neg".to_string()));
    assert_eq!(s[2], (1.0, "pos".to_string()));
}

#[test]
fn inputs_are_named() {
    assert!(check_names("tsne", &["model", "embeddings", "vocab", "tokens"], &["model", "embeddings", "vocab", "tokens"]).is_ok());
    let e = check_names("tsne", &["model", "vocab", "tokens"], &["model", "embeddings", "vocab", "tokens"]).unwrap_err();
    assert!(e.contains("needs a `embeddings` input"), "{e}");
    let e = check_names("neighbours", &["model", "embeddings", "vocab", "extra"], &["model", "embeddings", "vocab"]).unwrap_err();
    assert!(e.contains("`extra` is not one"), "{e}");
    let mut p = TsneParams { words: 5, ..TsneParams::default() };
    assert!(TsneKind.check(&mut p).unwrap_err().contains("words"));
}
