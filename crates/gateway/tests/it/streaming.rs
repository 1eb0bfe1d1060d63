//! `stream: true`: chunks pass through, PHI split across chunks is scrubbed, placeholders split
//! across chunks are restored, the audit record comes before `[DONE]`.

use serde_json::{Value, json};

use crate::*;

/// Parses an SSE body into its JSON events; returns (events, saw_done).
pub fn events(body: &str) -> (Vec<Value>, bool) {
    let mut out = Vec::new();
    let mut done = false;
    for ev in body.split("\n\n") {
        let Some(data) = ev.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            done = true;
        } else {
            out.push(serde_json::from_str(data).unwrap());
        }
    }
    (out, done)
}

fn content(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["content"].as_str())
        .collect()
}

#[tokio::test]
async fn phi_split_across_chunks_is_scrubbed_for_analyst() {
    let h = start().await;
    let key = h.key("analyst");
    let (s, headers, b) = h
        .chat(&key, None, json!({"model": "leaky", "stream": true, "messages": [{"role": "user", "content": "Any follow-up due?"}]}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(headers["content-type"], "text/event-stream");
    let (evs, done) = events(&b);
    assert!(done, "{b}");
    // The upstream sent 3-byte chunks: the answer is still streamed in many chunks.
    let visible = evs
        .iter()
        .filter(|e| {
            e["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        })
        .count();
    assert!(visible > 10, "only {visible} visible chunks");
    let text = content(&evs);
    assert_no_phi(
        &text,
        &[
            "John Carter",
            "Carter",
            "617-555-0199",
            "555-0199",
            "03/14/2021",
            "4839201",
        ],
    );
    assert!(text.contains("Follow up with"), "{text}");
    let rec = h.completes().pop().unwrap();
    assert_eq!(rec["output"]["stream"], true);
    assert!(rec["output"]["scrubbed"].as_u64().unwrap() >= 3, "{rec}");
    assert!(rec["output"]["ttft_ms"].as_f64().is_some(), "{rec}");
}

#[tokio::test]
async fn clinician_stream_restores_split_placeholders() {
    let h = start().await;
    let key = h.key("clinician");
    let (s, _, b) = h
        .chat(&key, Some("p-17"), json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": NOTE}]}))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_no_phi(&h.mock.all_text(), &NOTE_PHI);
    let (evs, done) = events(&b);
    assert!(done);
    let text = content(&evs);
    for p in NOTE_PHI {
        assert!(text.contains(p), "{p} not restored: {text}");
    }
    assert!(
        text.contains("[[NAME_9]]"),
        "invented placeholder must stay: {text}"
    );
}

#[tokio::test]
async fn streamed_tool_call_arguments_are_guarded() {
    let h = start().await;
    let key = h.key("analyst");
    let body = json!({"model": "echo", "stream": true, "messages": [{"role": "user", "content": NOTE}],
        "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]});
    let (s, _, b) = h.chat(&key, Some("p-17"), body).await;
    assert_eq!(s, 200, "{b}");
    let (evs, done) = events(&b);
    assert!(done);
    let args: String = evs
        .iter()
        .filter_map(|e| e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str())
        .collect();
    let v: Value = serde_json::from_str(&args).unwrap();
    assert_no_phi(&v.to_string(), &NOTE_PHI);
}

#[tokio::test]
async fn detector_crash_on_the_answer_fails_closed_with_a_record() {
    let h = start_with(std::sync::Arc::new(PanicsOn(
        phiguard_detect::Detector::new(),
        "Follow up",
    )))
    .await;
    let key = h.key("analyst");
    let body =
        json!({"model": "leaky", "messages": [{"role": "user", "content": "Any follow-up due?"}]});
    let (s, _, b) = h.chat(&key, None, body.clone()).await;
    assert_eq!((s, error_code(&b).as_str()), (500, "guard_failed"));
    assert_no_phi(&b, &["John Carter", "617-555-0199"]);
    let mut sbody = body;
    sbody["stream"] = json!(true);
    let (s, _, b) = h.chat(&key, None, sbody).await;
    assert_eq!(s, 200);
    let (evs, done) = events(&b);
    assert!(!done, "a failed stream must not end with [DONE]");
    assert_eq!(evs.last().unwrap()["error"]["code"], "guard_failed", "{b}");
    assert_no_phi(&b, &["John Carter", "617-555-0199", "03/14/2021"]);
    let recs = h.completes();
    assert_eq!(recs.len(), 2);
    assert_eq!(recs[1]["output"]["disposition"], "partial");
    assert_eq!(recs[1]["decision"]["code"], "guard_failed");
}
