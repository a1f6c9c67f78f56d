use super::*;

#[test]
fn tokens_keep_services_versions_and_addresses_whole() {
    let t: Vec<String> = tokens(
        "checkout-api 503 after v2.41.0 from 10.0.3.7, the OOM. 2026-11-30T07:13:00.000000Z #17 id 483920 HikariPool-1",
    )
    .collect();
    assert_eq!(
        t,
        [
            "checkout-api",
            "503",
            "v2.41.0",
            "10.0.3.7",
            "oom",
            "id",
            "hikaripool-1"
        ]
    );
    assert_eq!(
        services("Checkout-API latency; payments-worker backlog; post-deploy"),
        HashSet::from(["checkout-api".to_string(), "payments-worker".to_string()])
    );
}

#[test]
fn flat_and_shifted_images_compare_sensibly() {
    let a: Vec<u8> = (0..1024).map(|i| (i % 32 * 8) as u8).collect();
    let brighter: Vec<u8> = a.iter().map(|x| x / 2 + 60).collect();
    let other: Vec<u8> = (0..1024).map(|i| (i / 32 * 8) as u8).collect();
    assert!(image_similarity(&a, &brighter) > 0.99);
    assert!(image_similarity(&a, &other) < 0.1);
    assert!(image_similarity(&[10; 1024], &[10; 1024]) > 0.99);
    assert_eq!(image_similarity(&[10; 1024], &a), 0.0);
    assert_eq!(image_part(0.5), 0.0);
    assert!(image_part(0.99) > 0.85);
}

fn incident(id: i64, title: &str) -> CorpusIncident {
    CorpusIncident {
        id,
        title: title.into(),
        description: String::new(),
        status: opslens_domain::IncidentStatus::Resolved,
        severity: opslens_domain::Severity::High,
        created_at: chrono::DateTime::from_timestamp(1_700_000_000 + id * 86_400, 0)
            .unwrap_or_default(),
        stamp: format!("s{id}"),
        evidence_text: Vec::new(),
    }
}

fn shot(evidence_id: i64, incident_id: i64, model: &str, vector: Vec<f32>) -> ShotEmbedding {
    ShotEmbedding {
        evidence_id,
        incident_id,
        model: model.into(),
        vector,
    }
}

/// A vector close to `base` (cosine ≈ 1 - small) or far from it.
fn near(base: &[f32], nudge: f32) -> Vec<f32> {
    base.iter()
        .enumerate()
        .map(|(i, x)| x + if i % 3 == 0 { nudge } else { 0.0 })
        .collect()
}

#[test]
fn vision_embeddings_rank_the_same_screen_first_and_say_so() {
    let base: Vec<f32> = (0..64).map(|i| ((i * 37 % 11) as f32) - 5.0).collect();
    let other: Vec<f32> = (0..64).map(|i| ((i * 53 % 7) as f32) - 3.0).collect();
    // Four incidents with unrelated titles: text says nothing.
    let corpus = vec![
        incident(1, "alpha gamma"),
        incident(2, "delta epsilon"),
        incident(3, "zeta theta"),
        incident(4, "kappa lambda"),
        incident(5, "mu nu"),
    ];
    let embeds = vec![
        shot(10, 5, "m@1", base.clone()),
        shot(20, 2, "m@1", near(&base, 0.3)),
        shot(30, 3, "m@1", other.clone()),
        // The same vector, but from another model: never compared.
        shot(40, 4, "m@2", base.clone()),
    ];
    let r = rank(
        &DocCache::default(),
        5,
        &corpus,
        &HashMap::new(),
        &[],
        &embeds,
        10,
        false,
    );
    let c = opslens_vlm::embed::cosine(&base, &near(&base, 0.3)).unwrap();
    assert!(c > EMBED_FLOOR, "{c}");
    assert!(opslens_vlm::embed::cosine(&base, &other).unwrap() < EMBED_FLOOR);
    let first = r.hits.first().expect("a hit");
    assert_eq!(first.incident_id, 2, "{:?}", r.hits);
    assert!(
        first
            .reasons
            .iter()
            .any(|x| x.contains("alike to #2's to the vision model")),
        "{:?}",
        first.reasons
    );
    assert!(r
        .hits
        .iter()
        .all(|h| h.incident_id != 4 && h.incident_id != 3));
    // Without the vectors nothing links them.
    let r = rank(
        &DocCache::default(),
        5,
        &corpus,
        &HashMap::new(),
        &[],
        &[],
        10,
        false,
    );
    assert!(r.hits.is_empty(), "{:?}", r.hits);
    assert_eq!(embed_part(0.5), 0.0);
    assert!(embed_part(0.995) > 0.9);
}

/// The duplicate hint's vectors are cached between reads, yet a changed title is seen at
/// the next read (its stamp is the text's hash).
#[test]
fn the_open_corpus_is_cached_and_a_changed_title_is_seen() {
    let open = |id: i64, title: &str| CorpusIncident {
        status: opslens_domain::IncidentStatus::Triggered,
        created_at: chrono::DateTime::from_timestamp(1_700_000_000 + id * 60, 0)
            .unwrap_or_default(),
        stamp: String::new(),
        ..incident(id, title)
    };
    let cache = DocCache::default();
    let hint = |corpus: &[CorpusIncident]| {
        rank(&cache, 2, corpus, &HashMap::new(), &[], &[], 0, false)
            .duplicate
            .map(|d| d.incident_id)
    };
    let before = [
        open(1, "Disk full on db-1"),
        open(2, "checkout-api 503 errors spike"),
    ];
    assert_eq!(hint(&before), None);
    assert_eq!(cache.0.lock().unwrap().open_docs.len(), 2);
    assert!(cache.0.lock().unwrap().docs.is_empty(), "kept apart");
    let after = [
        open(1, "checkout-api 503 errors spike"),
        open(2, "checkout-api 503 errors spike"),
    ];
    assert_eq!(hint(&after), Some(1));
    // Only the live incidents stay once the corpus shrinks to under half the cache.
    let mut c = cache.0.lock().unwrap();
    let one = c.open_docs[&1].clone();
    c.open_docs.insert(7, one.clone());
    c.open_docs.insert(8, one);
    drop(c);
    assert_eq!(hint(&after[1..]), None);
    assert_eq!(cache.0.lock().unwrap().open_docs.len(), 1);
}
