//! Non-streaming requests: auth, roles, guards, routing, audit.

use std::sync::Arc;

use phiguard_detect::Detector;
use serde_json::{Value, json};

use crate::*;

fn note_body(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": NOTE}]})
}

#[tokio::test]
async fn health_models_and_auth_errors() {
    let h = start().await;
    let r = h
        .client
        .get(format!("{}/health", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = h
        .client
        .get(format!("{}/v1/models", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(error_code(&r.text().await.unwrap()), "missing_api_key");
    let blocker = h.key("blocker");
    let r = h
        .client
        .get(format!("{}/v1/models", h.base))
        .bearer_auth(&blocker)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["echo"]);
    let (s, _, b) = h
        .chat("pg_0123456789abcdef_00", None, note_body("echo"))
        .await;
    assert_eq!(s, 401);
    assert_eq!(error_code(&b), "invalid_api_key");
    // A revoked key stops working.
    let k = h.keys.create("analyst", &[], None).unwrap();
    h.keys.revoke(&k.key_id).unwrap();
    let (s, _, b) = h
        .chat(&k.token, None, json!({"model": "echo", "messages": []}))
        .await;
    assert_eq!((s, error_code(&b).as_str()), (401, "invalid_api_key"));
    assert_eq!(h.mock.count(), 0);
}

#[tokio::test]
async fn clinician_tokens_round_trip_and_invented_ones_stay() {
    let h = start().await;
    let key = h.key("clinician");
    let (s, headers, b) = h.chat(&key, Some("p-17"), note_body("echo")).await;
    assert_eq!(s, 200, "{b}");
    assert!(headers.get("x-request-id").is_some());
    // The upstream saw placeholders only.
    let sent = h.mock.all_text();
    assert_no_phi(&sent, &NOTE_PHI);
    assert!(sent.contains("[[NAME_1]]"), "{sent}");
    // The caller gets the values back; the placeholder the model invented stays as it is.
    let v: Value = serde_json::from_str(&b).unwrap();
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    for p in NOTE_PHI {
        assert!(content.contains(p), "{p} not restored in {content}");
    }
    assert!(content.contains("[[NAME_9]]"), "{content}");
}

#[tokio::test]
async fn analyst_sees_no_phi() {
    let h = start().await;
    let key = h.key("analyst");
    let (s, _, b) = h.chat(&key, Some("p-17"), note_body("echo")).await;
    assert_eq!(s, 200, "{b}");
    let sent = h.mock.all_text();
    assert_no_phi(&sent, &NOTE_PHI);
    assert!(sent.contains("[NAME]"), "{sent}");
    assert_no_phi(&b, &NOTE_PHI);
    // PHI the model invents is scrubbed too.
    let (s, _, b) = h.chat(&key, None, json!({"model": "leaky", "messages": [{"role": "user", "content": "Any follow-up due?"}]})).await;
    assert_eq!(s, 200, "{b}");
    assert_no_phi(
        &b,
        &["John Carter", "617-555-0199", "03/14/2021", "4839201"],
    );
    let v: Value = serde_json::from_str(&b).unwrap();
    let content = v["choices"][0]["message"]["content"].as_str().unwrap();
    let spans = Detector::new().detect(content);
    assert!(
        spans
            .iter()
            .all(|s| !phiguard_gateway::guard::is_phi(s.category)),
        "{content}"
    );
}

#[tokio::test]
async fn phi_never_reaches_a_provider_without_an_active_baa() {
    let h = start().await;
    let key = h.key("clinician");
    for (model, why) in [
        ("nobaa-model", "no_baa"),
        ("expired-model", "baa_inactive"),
        ("embed-only-model", "baa_inactive"),
        ("consumer-model", "consumer_endpoint"),
    ] {
        let before = h.mock.count();
        let (s, _, b) = h.chat(&key, Some("p-17"), note_body(model)).await;
        assert_eq!(s, 403, "{model}: {b}");
        assert_eq!(error_code(&b), "phi_route_denied");
        assert!(b.contains(why), "{b}");
        assert_eq!(h.mock.count(), before, "{model} received a request");
    }
    // Without PHI, a non-BAA provider is fine; with an active BAA, PHI goes (tokenized).
    let (s, _, b) = h
        .chat(&key, None, json!({"model": "nobaa-model", "messages": [{"role": "user", "content": "What is the normal range for serum potassium?"}]}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _, b) = h.chat(&key, Some("p-17"), note_body("baa-model")).await;
    assert_eq!(s, 200, "{b}");
    assert_no_phi(&h.mock.all_text(), &NOTE_PHI);
}

#[tokio::test]
async fn patient_ref_required_and_block_policy() {
    let h = start().await;
    let (s, _, b) = h.chat(&h.key("clinician"), None, note_body("echo")).await;
    assert_eq!((s, error_code(&b).as_str()), (400, "patient_ref_required"));
    let blocker = h.key("blocker");
    let (s, _, b) = h.chat(&blocker, Some("p-17"), note_body("echo")).await;
    assert_eq!((s, error_code(&b).as_str()), (403, "phi_blocked"));
    let (s, _, b) = h
        .chat(&blocker, None, json!({"model": "leaky", "messages": []}))
        .await;
    assert_eq!((s, error_code(&b).as_str()), (403, "model_not_allowed"));
    let (s, _, b) = h
        .client
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth(&blocker)
        .header("X-Phiguard-Action", "coding")
        .json(&note_body("echo"))
        .send()
        .await
        .map(|r| (r.status().as_u16(), (), r))
        .unwrap();
    let b = b.text().await.unwrap();
    assert_eq!((s, error_code(&b).as_str()), (403, "action_not_allowed"));
    let _ = b;
    assert_eq!(h.mock.count(), 0);
}

#[tokio::test]
async fn every_string_leaf_is_guarded() {
    let h = start().await;
    let key = h.key("clinician");
    let body = json!({
        "model": "echo",
        "messages": [
            {"role": "system", "content": "You assist with the chart of Maria Lopez."},
            {"role": "user", "name": "dr_lopez", "content": [{"type": "text", "text": NOTE}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
                "function": {"name": "lookup", "arguments": "{\"mrn\": \"MRN 4839201\", \"phone\": \"617-555-0199\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "Maria Lopez, born 03/14/2021"}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "Find records like those of Maria Lopez",
            "parameters": {"type": "object", "properties": {"mrn": {"type": "string", "description": "e.g. MRN 4839201"}}}}}],
        "user": "maria.lopez@example.org",
        "vendor_extra": {"note": "call 617-555-0199"}
    });
    let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
    assert_eq!(s, 200, "{b}");
    let sent = h.mock.last();
    assert_no_phi(
        &sent.to_string(),
        &[
            "Maria Lopez",
            "4839201",
            "617-555-0199",
            "maria.lopez@example.org",
            "03/14/2021",
        ],
    );
    let args = sent["messages"][2]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    serde_json::from_str::<Value>(args).expect("arguments stay JSON");
    // A tool call in the answer: its arguments are restored for the clinician.
    let tools = json!({"model": "echo", "messages": [{"role": "user", "content": NOTE}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    let (s, _, b) = h.chat(&key, Some("p-17"), tools).await;
    assert_eq!(s, 200, "{b}");
    let v: Value = serde_json::from_str(&b).unwrap();
    let args = v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    let args: Value = serde_json::from_str(args).unwrap();
    assert!(
        args["query"].as_str().unwrap().contains("Maria Lopez"),
        "{args}"
    );
}

#[tokio::test]
async fn fails_closed_when_audit_or_detector_fail() {
    let h = start().await;
    let key = h.key("clinician");
    h.sink.set_failing(true);
    let (s, _, b) = h.chat(&key, Some("p-17"), note_body("echo")).await;
    assert_eq!((s, error_code(&b).as_str()), (500, "audit_failed"));
    let (s, _, b) = h
        .chat(&key, None, json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": "hello"}]}))
        .await;
    assert_eq!((s, error_code(&b).as_str()), (500, "audit_failed"));
    assert_eq!(
        h.mock.count(),
        0,
        "nothing may go upstream without an audit record"
    );

    let h = start_with(Arc::new(BrokenScanner)).await;
    let key = h.key("clinician");
    let (s, _, b) = h.chat(&key, Some("p-17"), note_body("echo")).await;
    assert_eq!((s, error_code(&b).as_str()), (500, "guard_failed"));
    assert_eq!(h.mock.count(), 0);
}

#[tokio::test]
async fn every_request_has_a_complete_phi_free_audit_record() {
    let h = start().await;
    let clin = h.key("clinician");
    let ana = h.key("analyst");
    let mut ids = Vec::new();
    let reqs: Vec<(&str, Option<&str>, Value)> = vec![
        (&clin, Some("p-17"), note_body("echo")),
        (&ana, Some("p-18"), note_body("echo")),
        (&clin, Some("p-17"), note_body("nobaa-model")),
        (&clin, None, note_body("echo")),
        ("pg_bad", None, note_body("echo")),
        (
            &clin,
            Some("p-19"),
            json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": NOTE}]}),
        ),
    ];
    let n = reqs.len();
    for (k, p, b) in reqs {
        let (_, headers, _) = h.chat(k, p, b).await;
        ids.push(headers["x-request-id"].to_str().unwrap().to_string());
    }
    // The streamed request's record is written before its stream completes.
    let completes = h.completes();
    assert_eq!(completes.len(), n, "{completes:#?}");
    for id in &ids {
        assert!(
            completes.iter().any(|r| r["request_id"] == id.as_str()),
            "no record for {id}"
        );
    }
    let first = completes
        .iter()
        .find(|r| r["request_id"] == ids[0].as_str())
        .unwrap();
    assert_eq!(first["patient_ref"], "p-17");
    assert_eq!(first["role"], "clinician");
    assert_eq!(first["provider"], "private");
    assert_eq!(first["model"]["name"], "echo");
    assert_eq!(first["action"], "chat");
    assert_eq!(first["guard"]["policy"], "tokenize");
    assert!(
        first["guard"]["counts"]["NAME"].as_u64().unwrap() >= 1,
        "{first}"
    );
    assert!(first["guard"]["tokenized"].as_u64().unwrap() >= 4);
    assert_eq!(first["output"]["disposition"], "returned");
    assert!(first["user"].as_str().unwrap().starts_with("service:"));
    assert!(first["started_at"].is_string() && first["completed_at"].is_string());
    let denied = completes
        .iter()
        .find(|r| r["request_id"] == ids[2].as_str())
        .unwrap();
    assert_eq!(denied["decision"]["code"], "phi_route_denied");
    assert_eq!(denied["output"]["disposition"], "refused");
    // No PHI in any record: none of the sent values, and the detector finds nothing outside
    // the timestamps.
    let all = h.sink.records();
    let text = serde_json::to_string(&all).unwrap();
    assert_no_phi(&text, &NOTE_PHI);
    let det = Detector::new();
    for r in &all {
        let mut r = r.clone();
        r.as_object_mut().unwrap().remove("started_at");
        r.as_object_mut().unwrap().remove("completed_at");
        // Ids the gateway generates (random hex) look like identifiers to the detector:
        // check their shape instead.
        let id = r.as_object_mut().unwrap().remove("request_id").unwrap();
        let id = id.as_str().unwrap().strip_prefix("req_").unwrap();
        assert!(id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()));
        let user = r.as_object_mut().unwrap().remove("user").unwrap();
        let user = user.as_str().unwrap();
        assert!(
            user == "anonymous"
                || user
                    .strip_prefix("service:")
                    .unwrap()
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit())
        );
        let mut leaves = Vec::new();
        phiguard_gateway::guard::string_leaves(&r, &mut leaves);
        for l in leaves {
            let spans: Vec<_> = det
                .detect(&l)
                .into_iter()
                .filter(|s| phiguard_gateway::guard::is_phi(s.category))
                .collect();
            assert!(
                spans.is_empty(),
                "detector found {spans:?} in an audit field"
            );
        }
    }
}

#[tokio::test]
async fn bad_bodies_get_openai_shaped_errors() {
    let h = start().await;
    let key = h.key("clinician");
    let r = h
        .client
        .post(format!("{}/v1/chat/completions", h.base))
        .bearer_auth(&key)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(error_code(&r.text().await.unwrap()), "invalid_request");
    let big = "x".repeat(70_000);
    let (s, _, b) = h
        .chat(
            &key,
            None,
            json!({"model": "echo", "messages": [{"role": "user", "content": big}]}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (413, "request_too_large"));
    let (s, _, b) = h
        .chat(
            &key,
            None,
            json!({"model": "no-such-model", "messages": []}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (404, "model_not_found"));
    assert_eq!(h.mock.count(), 0);
}

#[tokio::test]
async fn rate_limit_per_key_and_metrics_without_phi() {
    let h = start().await;
    let key = h.key("analyst");
    let other = h.key("analyst");
    let mut limited = 0;
    for _ in 0..45 {
        let (s, _, b) = h
            .chat(
                &key,
                None,
                json!({"model": "no-such-model", "messages": []}),
            )
            .await;
        if s == 429 {
            assert_eq!(error_code(&b), "rate_limited");
            limited += 1;
        }
    }
    assert!(limited >= 4, "only {limited} requests were limited");
    // Another key is not affected.
    let (s, _, _) = h.chat(&other, Some("p-1"), note_body("echo")).await;
    assert_eq!(s, 200);
    let m = metrics_text(&h.client, &h.base).await;
    assert!(
        m.contains("phiguard_gateway_requests_total{status=\"429\",code=\"rate_limited\"}"),
        "{m}"
    );
    assert!(
        m.contains("phiguard_gateway_requests_total{status=\"200\",code=\"ok\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("phiguard_gateway_detections_total{category=\"NAME\"}"),
        "{m}"
    );
    assert!(
        m.contains(
            "phiguard_gateway_guard_decisions_total{policy=\"redact\",outcome=\"transformed\"} 1"
        ),
        "{m}"
    );
    assert!(
        m.contains("phiguard_gateway_overhead_milliseconds_count 1"),
        "{m}"
    );
    assert_no_phi(&m, &NOTE_PHI);
    assert!(!m.contains("p-1") && !m.contains(&key[..12]), "{m}");
}

#[tokio::test]
async fn concurrent_requests_never_share_placeholders() {
    let h = start().await;
    let key = h.key("clinician");
    let names = [
        "Maria Lopez",
        "John Carter",
        "Emily Chen",
        "Robert Miller",
        "Aisha Khan",
        "David Brown",
        "Laura Smith",
        "James Wilson",
        "Sofia Garcia",
        "Peter Novak",
    ];
    let mut tasks = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let client = h.client.clone();
        let url = format!("{}/v1/chat/completions", h.base);
        let key = key.clone();
        let body = json!({"model": "echo", "messages": [{"role": "user", "content": format!("Patient {name} was seen by the nurse today.")}]});
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(key)
                .header("X-Patient-Ref", format!("p-{i}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        let (s, b) = t.await.unwrap();
        assert_eq!(s, 200, "{b}");
        let v: Value = serde_json::from_str(&b).unwrap();
        let content = v["choices"][0]["message"]["content"].as_str().unwrap();
        assert!(content.contains(names[i]), "{content}");
        for (j, other) in names.iter().enumerate() {
            if j != i {
                assert!(
                    !content.contains(other),
                    "request {i} got {other}: {content}"
                );
            }
        }
    }
    assert_no_phi(&h.mock.all_text(), &names);
}

#[tokio::test]
async fn upstream_timeout_is_a_clear_error_with_a_record() {
    let h = start().await;
    let key = h.key("analyst");
    let t = std::time::Instant::now();
    let (s, _, b) = h
        .chat(
            &key,
            None,
            json!({"model": "slow", "messages": [{"role": "user", "content": "hello"}]}),
        )
        .await;
    assert_eq!((s, error_code(&b).as_str()), (504, "upstream_timeout"));
    assert!(t.elapsed() < std::time::Duration::from_secs(8));
    let rec = h.completes().pop().unwrap();
    assert_eq!(rec["decision"]["code"], "upstream_timeout");
}

#[tokio::test]
async fn embeddings_are_guarded_and_routed_by_the_embeddings_baa() {
    let h = start().await;
    let key = h.key("clinician");
    let post = |model: &str, patient: Option<&str>| {
        let mut rb = h
            .client
            .post(format!("{}/v1/embeddings", h.base))
            .bearer_auth(&key)
            .json(&json!({"model": model, "input": [NOTE, "no identifiers here"]}));
        if let Some(p) = patient {
            rb = rb.header("X-Patient-Ref", p);
        }
        rb.send()
    };
    // The chat-only BAA does not cover embeddings.
    let r = post("baa-model", Some("p-17")).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(&r.text().await.unwrap()), "phi_route_denied");
    assert_eq!(h.mock.count(), 0);
    let r = post("embed-only-model", None).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post("embed-only-model", Some("p-17")).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_no_phi(&h.mock.all_text(), &NOTE_PHI);
    let rec = h.completes().pop().unwrap();
    assert_eq!(rec["kind"], "gateway.embeddings");
    assert_eq!(rec["action"], "embedding");
    assert_eq!(rec["decision"]["routing"], "baa_active");
    // The analyst role does not allow the embedding action.
    let ana = h.key("analyst");
    let r = h
        .client
        .post(format!("{}/v1/embeddings", h.base))
        .bearer_auth(&ana)
        .json(&json!({"model": "echo", "input": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(error_code(&r.text().await.unwrap()), "action_not_allowed");
}
