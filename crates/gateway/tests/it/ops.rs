//! Readiness and per-route rate limits.

use std::sync::Arc;

use phiguard_detect::Detector;
use serde_json::{Value, json};

use crate::*;

#[tokio::test]
async fn ready_is_distinct_from_health_and_names_the_failed_check() {
    let h = start().await;
    let get = |path: &'static str| {
        let c = h.client.clone();
        let url = format!("{}{path}", h.base);
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, body) = get("/ready").await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "ready");

    // The audit sink breaks: not ready (503, OpenAI-shaped, naming the check), still alive.
    h.sink.set_failing(true);
    let (status, body) = get("/ready").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&body), "not_ready");
    let v: Value = serde_json::from_str(&body).unwrap();
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("audit"), "{msg}");
    let (status, _) = get("/health").await;
    assert_eq!(status, 200);

    // Fixed: ready again.
    h.sink.set_failing(false);
    assert_eq!(get("/ready").await.0, 200);
}

#[tokio::test]
async fn no_provider_means_not_ready() {
    let h = start_config_text(Arc::new(Detector::new()), |_| {
        "[server]\nlisten = \"127.0.0.1:0\"\nplain_http = true\n\n[roles.r]\nactions = [\"chat\"]\nmodels = [\"*\"]\nphi = \"none\"\ninput = \"redact\"\n".to_string()
    })
    .await;
    let r = h
        .client
        .get(format!("{}/ready", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let body = r.text().await.unwrap();
    assert_eq!(error_code(&body), "not_ready");
    assert!(body.contains("provider"), "{body}");
}

#[tokio::test]
async fn per_route_limit_answers_429_with_retry_after() {
    let h = start_config_text(Arc::new(Detector::new()), |up| {
        config_text(up).replace(
            "burst_per_key = 40",
            "burst_per_key = 40\nrequests_per_second_per_route = 1\nburst_per_route = 2",
        )
    })
    .await;
    // Different keys: the route's budget is shared by all callers.
    let keys: Vec<String> = (0..3).map(|_| h.key("clinician")).collect();
    let mut limited = None;
    for i in 0..12 {
        let r = h
            .client
            .get(format!("{}/v1/models", h.base))
            .bearer_auth(&keys[i % keys.len()])
            .send()
            .await
            .unwrap();
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status().as_u16(), 200);
    }
    let r = limited.expect("the route limit never answered 429");
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1, "Retry-After {retry}");
    let body = r.text().await.unwrap();
    assert_eq!(error_code(&body), "rate_limited");
    assert!(body.contains("route"), "{body}");

    // Another route has its own budget.
    let (status, headers, body) = h
        .chat(
            &keys[0],
            None,
            json!({"model": "echo", "messages": [{"role": "user", "content": "hello there"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(headers.get("retry-after").is_none());
}
