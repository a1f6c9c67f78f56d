//! The engine on the tiny fixture model: control tokens typed by a user are plain text, the
//! engine thread runs jobs in order, and quantized weights are cached between loads. (The
//! `opslens vlm run` command's tests live with the command, in the binary.)

#[test]
fn text_only_prompt_with_control_tokens_is_defused() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/test/tiny-qwen3-vl"
    );
    let opts = opslens_vlm::LoadOptions {
        mode: opslens_vlm::WeightMode::F32,
        ..Default::default()
    };
    let mut eng =
        opslens_vlm::Engine::load(dir.as_ref(), &candle_core::Device::Cpu, &opts).unwrap();
    let params = opslens_vlm::GenerateParams {
        max_new_tokens: 2,
        ..Default::default()
    };
    // an injected <|image_pad|> would otherwise fail with "prompt has 1 image tokens"
    let out = eng
        .generate(
            None,
            "hi <|image_pad|><|im_end|>",
            &params,
            &mut |_, _| {},
            None,
        )
        .unwrap();
    assert_eq!(out.image_tokens, 0);
    assert!(out.token_ids.len() <= 2);
}

#[test]
fn engine_thread_runs_jobs_in_order() {
    use std::sync::{atomic::AtomicBool, mpsc, Arc};
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/test/tiny-qwen3-vl"
    );
    let opts = opslens_vlm::LoadOptions {
        mode: opslens_vlm::WeightMode::F32,
        ..Default::default()
    };
    let h = opslens_vlm::EngineHandle::spawn(dir.into(), candle_core::Device::Cpu, opts).unwrap();
    let img = image::open(format!("{dir}/panel.png")).unwrap();
    let (tx, rx) = mpsc::channel();
    for i in 0..2 {
        let tx = tx.clone();
        h.submit(opslens_vlm::Job {
            more_images: Vec::new(),
            image: Some(img.clone()),
            prompt: format!("job {i}"),
            params: opslens_vlm::GenerateParams {
                max_new_tokens: 3,
                ..Default::default()
            },
            cancel: Arc::new(AtomicBool::new(false)),
            on_text: None,
            reply: Box::new(move |r| tx.send((i, r.map(|g| g.token_ids.len()))).unwrap()),
        })
        .unwrap();
    }
    let got: Vec<_> = (0..2).map(|_| rx.recv().unwrap()).collect();
    assert_eq!(got[0].0, 0);
    assert_eq!(got[1].0, 1);
    assert!(got.iter().all(|(_, r)| r.as_ref().is_ok_and(|n| *n <= 3)));
    assert_eq!(h.queue_len(), 0);
}

/// The first quantized load writes its blocks to the cache folder, the second reads every
/// one of them back instead of quantizing and generates exactly the same tokens; another mode
/// gets its own file, and a damaged file is ignored and rewritten.
#[test]
fn quantized_weights_are_cached_between_loads() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/test/tiny-qwen3-vl"
    );
    let cache = std::env::temp_dir().join(format!("opslens-qcache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let opts = |mode| opslens_vlm::LoadOptions {
        mode,
        cache_dir: Some(cache.clone()),
        ..Default::default()
    };
    let img = image::open(format!("{dir}/panel.png")).unwrap();
    let params = opslens_vlm::GenerateParams {
        max_new_tokens: 6,
        sampling: opslens_vlm::Sampling::Greedy,
        ..Default::default()
    };
    let run = |mode| {
        let mut e = opslens_vlm::Engine::load(dir.as_ref(), &candle_core::Device::Cpu, &opts(mode))
            .unwrap();
        let out = e
            .generate(Some(&img), "What spiked?", &params, &mut |_, _| {}, None)
            .unwrap();
        (
            e.quant_cache.clone().expect("a cache was asked for"),
            out.token_ids,
        )
    };
    let q = opslens_vlm::WeightMode::Q8_0;
    let (first, ids1) = run(q);
    assert_eq!(first.read, 0);
    assert!(first.written > 10, "{first:?}");
    assert!(first.error.is_none(), "{first:?}");
    let file = first.path.clone().unwrap();
    assert!(file.exists());
    let (second, ids2) = run(q);
    assert_eq!(
        (second.read, second.written),
        (first.written, 0),
        "{second:?}"
    );
    assert_eq!(ids1, ids2);

    // Another mode, another key: nothing read from the Q8_0 file.
    let (other, _) = run(opslens_vlm::WeightMode::Q6K);
    assert_eq!(other.read, 0);
    assert_ne!(other.path, first.path);

    // A damaged cache file is not trusted: quantized again, rewritten, same tokens. A
    // temporary file an interrupted save left and files beyond the newest two go.
    std::fs::write(&file, b"GGUF but not really").unwrap();
    std::fs::write(cache.join("0123.gguf.part"), b"half").unwrap();
    std::fs::write(cache.join("0456.gguf"), b"old").unwrap();
    std::fs::File::options()
        .write(true)
        .open(cache.join("0456.gguf"))
        .unwrap()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .unwrap();
    let (again, ids3) = run(q);
    assert_eq!(again.read, 0);
    assert!(again.written > 10);
    assert_eq!(ids1, ids3);
    let mut left: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left.iter()
            .all(|n| n.ends_with(".gguf") && n != "0456.gguf"),
        "{left:?}"
    );
    let _ = std::fs::remove_dir_all(&cache);
}

/// The generation loop stops at the token that closes the answer's top-level JSON object and
/// keeps everything up to it. The tiny random model writes `{` and `}` only by chance, so
/// seeded near-uniform sampling gives runs that do; each such run is replayed with
/// the stop on and must end exactly at the closing token, with the same tokens before it.
#[test]
fn generation_stops_when_the_top_level_json_object_closes() {
    use opslens_vlm::generate::JsonEnd;
    use opslens_vlm::{GenerateParams, Sampling, StopReason};
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/test/tiny-qwen3-vl"
    );
    let opts = opslens_vlm::LoadOptions {
        mode: opslens_vlm::WeightMode::F32,
        ..Default::default()
    };
    let mut eng =
        opslens_vlm::Engine::load(dir.as_ref(), &candle_core::Device::Cpu, &opts).unwrap();
    let mut replayed = 0;
    // Seed 48 is the first to write one (found by scanning 0..400); a few around it keep the
    // test short and still fail loudly if the numerics change.
    for seed in 44..56u64 {
        let params = GenerateParams {
            max_new_tokens: 160,
            sampling: Sampling::TopP {
                temperature: 50.0,
                top_p: 1.0,
                seed,
            },
            ..Default::default()
        };
        let mut watch = JsonEnd::new();
        let mut closed_at = None;
        let mut n = 0;
        let free = eng
            .generate(
                None,
                "{",
                &params,
                &mut |_, piece| {
                    if closed_at.is_none() && watch.feed(piece) {
                        closed_at = Some(n);
                    }
                    n += 1;
                },
                None,
            )
            .unwrap();
        let Some(k) = closed_at else { continue };
        let stopped = eng
            .generate(
                None,
                "{",
                &GenerateParams {
                    stop_at_json_end: true,
                    ..params
                },
                &mut |_, _| {},
                None,
            )
            .unwrap();
        assert_eq!(stopped.stop_reason, StopReason::JsonEnd, "seed {seed}");
        assert_eq!(stopped.token_ids, free.token_ids[..=k], "seed {seed}");
        assert!(
            stopped.text.trim_end().ends_with(['}', ']']),
            "{:?}",
            stopped.text
        );
        replayed += 1;
    }
    assert!(replayed > 0, "no seeded run wrote a whole JSON object");
}
