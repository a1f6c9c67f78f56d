use super::*;
use crate::{NewImageEvidence, NewIncidentRow, Store};
use opslens_domain::EvidenceType;

fn setup() -> (tempfile::TempDir, Store, i64) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let inc = s.create_incident(NewIncidentRow::test("t")).unwrap();
    (dir, s, inc.id)
}

fn shot(s: &Store, inc: i64, n: u8) -> i64 {
    s.add_image_evidence(
        inc,
        NewImageEvidence {
            title: format!("s{n}"),
            source: "upload".into(),
            bytes: vec![n; 8],
            ext: "png",
            mime: "image/png",
            width: 1,
            height: 1,
            original_name: None,
            analysis_state: AnalysisState::WaitingForModel,
        },
    )
    .unwrap()
    .id
}

fn done(answer: Option<&str>) -> FinishedAnalysis {
    FinishedAnalysis {
        model: "m".into(),
        timings: serde_json::json!({}),
        raw_output: "raw".into(),
        worker: None,
        device: None,
        outcome: match answer {
            Some(a) => AnalysisOutcome::Answer { answer: a.into() },
            None => AnalysisOutcome::Findings {
                content: "c".into(),
                findings: serde_json::json!({"summary": "s"}),
                ms: 5,
                events: vec![(now(), "spike".into())],
            },
        },
    }
}

#[test]
fn the_queue_runs_in_order_dedupes_reanalysis_and_survives_interruptions() {
    let (_d, s, inc) = setup();
    let a = shot(&s, inc, 1);
    let b = shot(&s, inc, 2);
    assert_eq!(s.pending_analysis_count().unwrap(), 2);
    // Asking for the full analysis again while one is pending returns that one.
    let again = s.enqueue_analysis(a, None, true).unwrap();
    assert_eq!(s.analysis_jobs_of(a).unwrap().len(), 1);
    assert_eq!(
        s.evidence(a).unwrap().analysis_state,
        Some(AnalysisState::Queued)
    );
    let first = s.claim_analysis_job().unwrap().unwrap();
    assert_eq!(
        (first.id, first.evidence_id, first.attempts),
        (again.id, a, 1)
    );
    assert_eq!(
        s.evidence(a).unwrap().analysis_state,
        Some(AnalysisState::Running)
    );
    // Interrupted twice more: the third restart fails it instead of retrying forever.
    for attempt in 2..=3 {
        assert_eq!(s.requeue_interrupted_analyses("local", 3).unwrap(), (1, 0));
        let j = s.claim_analysis_job().unwrap().unwrap();
        assert_eq!((j.id, j.attempts), (first.id, attempt));
    }
    assert_eq!(s.requeue_interrupted_analyses("local", 3).unwrap(), (0, 1));
    let ev = s.evidence(a).unwrap();
    assert_eq!(ev.analysis_state, Some(AnalysisState::Failed));
    assert!(ev.analysis_error.unwrap().contains("interrupted 3 times"));
    // The next job runs and its findings, content and events land together.
    let j = s.claim_analysis_job().unwrap().unwrap();
    assert_eq!(j.evidence_id, b);
    s.finish_analysis_job(j.id, &done(None)).unwrap();
    let ev = s.evidence(b).unwrap();
    assert_eq!(
        (ev.analysis_state, ev.content.as_str()),
        (Some(AnalysisState::Done), "c")
    );
    let observations = |s: &Store| {
        s.timeline(inc)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == TimelineKind::Observation)
            .count()
    };
    assert_eq!(observations(&s), 1);
    // A question keeps the findings and adds its answer; a re-analysis replaces its events.
    let q = s.enqueue_analysis(b, Some("why?"), true).unwrap();
    let j = s.claim_analysis_job().unwrap().unwrap();
    assert_eq!(j.id, q.id);
    s.finish_analysis_job(j.id, &done(Some("because"))).unwrap();
    let f = s.evidence(b).unwrap().findings.unwrap();
    assert_eq!(
        (f["summary"].as_str(), f["questions"][0]["answer"].as_str()),
        (Some("s"), Some("because"))
    );
    s.enqueue_analysis(b, None, true).unwrap();
    let j = s.claim_analysis_job().unwrap().unwrap();
    s.finish_analysis_job(j.id, &done(None)).unwrap();
    assert_eq!(observations(&s), 1);
    let f = s.evidence(b).unwrap().findings.unwrap();
    assert_eq!(f["questions"][0]["question"], "why?");
    assert!(s.claim_analysis_job().unwrap().is_none());
    // Text evidence is refused; waiting/queued flips only pending screenshots.
    let note = s
        .add_text_evidence(inc, EvidenceType::Note, "n", "x", "")
        .unwrap();
    assert!(matches!(
        s.enqueue_analysis(note.id, None, true),
        Err(StoreError::Conflict(_))
    ));
    let c = shot(&s, inc, 3);
    assert_eq!(s.set_analysis_waiting(true).unwrap(), 0);
    s.enqueue_analysis(c, None, true).unwrap();
    assert_eq!(s.set_analysis_waiting(true).unwrap(), 1);
    assert_eq!(
        s.evidence(c).unwrap().analysis_state,
        Some(AnalysisState::WaitingForModel)
    );
    assert_eq!(
        s.evidence(b).unwrap().analysis_state,
        Some(AnalysisState::Done)
    );
}

#[test]
fn leases_let_one_worker_take_over_a_dead_ones_job_and_never_share_one() {
    use std::time::Duration;
    let (_d, s, inc) = setup();
    let a = shot(&s, inc, 1);
    let b = shot(&s, inc, 2);
    let short = Duration::from_millis(50);
    let long = Duration::from_secs(60);
    let ja = s.take_analysis_job("w1", short, 3).unwrap().unwrap();
    assert_eq!((ja.evidence_id, ja.worker.as_deref()), (a, Some("w1")));
    assert!(ja.lease_until.is_some());
    // w2 gets the next job, not w1's (still leased).
    let jb = s.take_analysis_job("w2", long, 3).unwrap().unwrap();
    assert_eq!(jb.evidence_id, b);
    assert!(s.take_analysis_job("w2", long, 3).unwrap().is_none());
    // w1 stops renewing: after its lease, w2 takes its job over.
    std::thread::sleep(Duration::from_millis(80));
    let over = s.take_analysis_job("w2", long, 3).unwrap().unwrap();
    assert_eq!(
        (over.id, over.attempts, over.worker.as_deref()),
        (ja.id, 2, Some("w2"))
    );
    // w1 comes back: it cannot renew, and its result is refused, so nothing is written twice.
    assert!(!s.renew_analysis_lease(ja.id, "w1", long).unwrap());
    let mut late = done(None);
    late.worker = Some("w1".into());
    assert!(matches!(
        s.finish_analysis_job(ja.id, &late),
        Err(StoreError::Conflict(_))
    ));
    assert!(s.renew_analysis_lease(ja.id, "w2", long).unwrap());
    let mut ok = done(None);
    ok.worker = Some("w2".into());
    ok.device = Some("cpu".into());
    let fin = s.finish_analysis_job(ja.id, &ok).unwrap();
    assert_eq!(
        (
            fin.state,
            fin.worker.as_deref(),
            fin.device.as_deref(),
            fin.lease_until
        ),
        (AnalysisState::Done, Some("w2"), Some("cpu"), None)
    );
    // A restart of w1 requeues only w1's own jobs: w2's running one keeps its lease.
    assert_eq!(s.requeue_interrupted_analyses("w1", 3).unwrap(), (0, 0));
    assert_eq!(s.analysis_job(jb.id).unwrap().state, AnalysisState::Running);
    // A job whose worker dies max_attempts times fails instead of being taken again.
    let c = shot(&s, inc, 3);
    for _ in 0..2 {
        s.take_analysis_job("w3", short, 2).unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(80));
    }
    assert!(s.take_analysis_job("w3", short, 2).unwrap().is_none());
    let ev = s.evidence(c).unwrap();
    assert_eq!(ev.analysis_state, Some(AnalysisState::Failed));
    assert!(ev.analysis_error.unwrap().contains("lease not renewed"));
}
