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

#[tokio::test]
async fn per_user_limit_counts_each_end_user_of_a_key_apart() {
    let h = start_config_text(Arc::new(Detector::new()), |up| {
        config_text(up).replace(
            "burst_per_key = 40",
            "burst_per_key = 40\nrequests_per_second_per_user = 1\nburst_per_user = 2",
        )
    })
    .await;
    let key = h.key("clinician");
    let send = |user_header: Option<&'static str>, body_user: Option<&'static str>| {
        let mut body =
            json!({"model": "echo", "messages": [{"role": "user", "content": "hello there"}]});
        if let Some(u) = body_user {
            body["user"] = json!(u);
        }
        let mut rb = h
            .client
            .post(format!("{}/v1/chat/completions", h.base))
            .bearer_auth(&key)
            .json(&body);
        if let Some(u) = user_header {
            rb = rb.header("X-Phiguard-User", u);
        }
        rb.send()
    };
    // u-1 by header: two at once (the burst), then 429 naming the user limit.
    let mut limited = None;
    for _ in 0..6 {
        let r = send(Some("u-1"), None).await.unwrap();
        if r.status().as_u16() == 429 {
            limited = Some(r);
            break;
        }
        assert_eq!(r.status().as_u16(), 200);
    }
    let r = limited.expect("the user limit never answered 429");
    assert!(r.headers().get("retry-after").is_some());
    let body = r.text().await.unwrap();
    assert_eq!(error_code(&body), "rate_limited");
    assert!(body.contains("user"), "{body}");
    // Another user of the same key, named in the body as OpenAI clients do, is not limited by
    // u-1's use; nor is a request that names no user.
    assert_eq!(
        send(None, Some("u-2")).await.unwrap().status().as_u16(),
        200
    );
    assert_eq!(send(None, None).await.unwrap().status().as_u16(), 200);
    // The body's user counts the same as the header's.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(None, Some("u-1")).await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // A malformed header is refused.
    let r = send(Some("Maria Lopez <m@x>"), None).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // The end user is in the audit record when it is an opaque reference; a body `user` that
    // is not one (it could be a name) is counted but never recorded.
    assert_eq!(
        send(None, Some("desk #4 (night)"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    let records = h.sink.records();
    assert!(records.iter().any(|r| r["end_user"] == "u-2"));
    assert!(records.iter().any(|r| r["end_user"] == "u-1"));
    let all = serde_json::to_string(&records).unwrap();
    assert!(
        !all.contains("desk #4"),
        "a body user that is not a reference was recorded"
    );
}

#[tokio::test]
async fn metrics_show_each_baa_s_days_remaining_and_state() {
    let h = start().await;
    let m = metrics_text(&h.client, &h.base).await;
    // The harness's BAAs: in effect for another 365 days, expiring today, another service.
    assert!(
        m.contains("phiguard_gateway_baa_days_remaining{provider=\"baa_ok\"} 365"),
        "{m}"
    );
    assert!(m.contains("phiguard_gateway_baa_active{provider=\"baa_ok\"} 1"));
    assert!(m.contains("phiguard_gateway_baa_days_remaining{provider=\"baa_expired\"} 0"));
    assert!(m.contains("phiguard_gateway_baa_active{provider=\"baa_expired\"} 0"));
    assert!(m.contains("phiguard_gateway_baa_active{provider=\"baa_other_service\"} 1"));
    // Private deployments and providers without a BAA are not BAA-bound.
    for p in ["private", "no_baa", "consumer"] {
        assert!(!m.contains(&format!("provider=\"{p}\"")), "{p}: {m}");
    }
}

#[test]
fn baa_expiry_warnings_name_the_provider_and_the_date() {
    let text = config_text("http://127.0.0.1:9/v1");
    let config =
        phiguard_gateway::Config::parse(&text, std::path::Path::new("t.toml"), |_| None).unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let soon = config.baa_expiry_warnings(today, 30);
    assert_eq!(soon.len(), 1, "{soon:?}");
    assert!(
        soon[0].starts_with("providers.baa_expired.baa expired on "),
        "{soon:?}"
    );
    // 400 days ahead, the 365-day BAAs are inside the window as well.
    let later = config.baa_expiry_warnings(today + time::Duration::days(340), 30);
    assert!(
        later
            .iter()
            .any(|w| w.starts_with("providers.baa_ok.baa expires on ") && w.contains("in 25 days")),
        "{later:?}"
    );
}

#[tokio::test]
async fn the_provider_registry_view_is_for_admin_roles_and_holds_no_endpoint_or_secret() {
    let h = start_config_text(Arc::new(Detector::new()), |up| {
        format!(
            "{}\n[roles.ops]\nactions = [\"admin\"]\nmodels = []\nphi = \"none\"\ninput = \"block\"\n",
            config_text(up)
        )
    })
    .await;
    let get = |key: String| {
        h.client
            .get(format!("{}/v1/phiguard/providers", h.base))
            .bearer_auth(key)
            .send()
    };
    // A clinician may not; an unauthenticated caller neither.
    let r = get(h.key("clinician")).await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(error_code(&r.text().await.unwrap()), "action_not_allowed");
    let r = h
        .client
        .get(format!("{}/v1/phiguard/providers", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);

    let r = get(h.key("ops")).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let by_name = |n: &str| {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("{n} missing: {v}"))
    };
    let ok = by_name("baa_ok");
    assert_eq!(ok["baa"]["active"], true, "{ok}");
    assert_eq!(ok["baa"]["days_remaining"], 365);
    assert_eq!(ok["baa"]["checklist"], "not_recorded");
    assert!(ok["phi_routing"].as_str().unwrap().starts_with("yes"));
    let expired = by_name("baa_expired");
    assert_eq!(expired["baa"]["active"], false);
    assert_eq!(expired["phi_routing"], "no: BAA not in effect");
    assert_eq!(by_name("no_baa")["phi_routing"], "no: no BAA");
    assert_eq!(by_name("private")["phi_routing"], "yes: private deployment");
    let consumer = by_name("consumer");
    assert_eq!(consumer["consumer_endpoint"], true);
    assert!(
        consumer["phi_routing"]
            .as_str()
            .unwrap()
            .starts_with("never")
    );
    // No endpoint URL (internal addresses) and no credential field is shown.
    assert!(
        !text.contains("http://") && !text.contains("https://"),
        "{text}"
    );
    assert!(
        !text.contains("api_key") && !text.contains("secret"),
        "{text}"
    );
}
