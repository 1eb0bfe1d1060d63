//! The model registry (`[models.NAME]`) and the BAA checklist, through the real router.

use std::sync::Arc;

use phiguard_detect::Detector;
use serde_json::{Value, json};

use crate::*;

const CHECKLIST: &str = "signed = true
no_training_on_phi = true
retention_and_deletion = true
subcontractor_disclosure = true
breach_notification_timeline = true
data_portability = true
no_data_mixing = true
security_rule_safeguards = true
covers_ai_services = true
security_evidence = true
";

fn registry_config(upstream: &str) -> String {
    let baa = |name: &str, checklist: &str| {
        format!(
            "
[providers.{name}]
kind = \"openai_compatible\"
endpoint = \"{upstream}\"
models = [\"{name}-model\"]
[providers.{name}.baa]
signed = \"{signed}\"
effective = \"{signed}\"
expires = \"{future}\"
services = [\"chat.completions\"]
[providers.{name}.baa.checklist]
{checklist}",
            signed = date(-30),
            future = date(365),
        )
    };
    format!(
        "{base}
[models.registered]
provider = \"private\"
version = \"2024-08-06\"
upstream_name = \"echo-upstream\"
description = \"general chat\"
retired = \"{later}\"

[models.old]
provider = \"private\"
version = \"1\"
retired = \"{yesterday}\"
{complete}{incomplete}",
        base = config_text(upstream),
        later = date(30),
        yesterday = date(-1),
        complete = baa("checked", CHECKLIST),
        incomplete = baa(
            "unchecked",
            &CHECKLIST.replace("no_data_mixing = true", "no_data_mixing = false")
        ),
    )
}

async fn start_registry() -> Harness {
    start_config_text(Arc::new(Detector::new()), registry_config).await
}

fn body(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

fn record_for(h: &Harness, headers: &reqwest::header::HeaderMap) -> Value {
    let id = headers["x-request-id"].to_str().unwrap().to_string();
    h.completes()
        .into_iter()
        .find(|r| r["request_id"] == id.as_str())
        .unwrap()
}

#[tokio::test]
async fn registry_version_in_audit_upstream_name_sent_and_models_listed() {
    let h = start_registry().await;
    let key = h.key("clinician");
    let (s, headers, b) = h.chat(&key, Some("p-17"), body("registered", NOTE)).await;
    assert_eq!(s, 200, "{b}");
    // The upstream saw the registry's upstream name.
    assert_eq!(h.mock.last()["model"], "echo-upstream");
    let rec = record_for(&h, &headers);
    assert_eq!(rec["model"]["name"], "registered");
    assert_eq!(rec["model"]["version"], "2024-08-06");
    assert_eq!(rec["model"]["provider"], "private");
    assert_eq!(rec["provider"], "private");
    let dispatch = h
        .sink
        .records()
        .into_iter()
        .find(|r| r["request_id"] == rec["request_id"] && r["phase"] == "dispatch")
        .unwrap();
    assert_eq!(dispatch["model"]["version"], "2024-08-06");
    // A model listed only under its provider: version unknown.
    let (s, headers, _) = h.chat(&key, None, body("echo", "hello")).await;
    assert_eq!(s, 200);
    let rec = record_for(&h, &headers);
    assert_eq!(rec["model"]["name"], "echo");
    assert!(rec["model"]["version"].is_null(), "{rec}");
    assert_eq!(rec["model"]["provider"], "private");

    let v: Value = h
        .client
        .get(format!("{}/v1/models", h.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let data = v["data"].as_array().unwrap();
    let find = |id: &str| data.iter().find(|m| m["id"] == id).cloned();
    let reg = find("registered").unwrap();
    assert_eq!(reg["object"], "model");
    assert_eq!(reg["owned_by"], "private");
    assert_eq!(reg["version"], "2024-08-06");
    assert_eq!(reg["description"], "general chat");
    assert_eq!(reg["retired"], date(30));
    let echo = find("echo").unwrap();
    assert!(echo.get("version").is_none(), "{echo}");
    // Retired models are not offered.
    assert!(find("old").is_none(), "{v}");
}

#[tokio::test]
async fn retired_model_is_refused_before_anything_goes_upstream() {
    let h = start_registry().await;
    let key = h.key("clinician");
    let (s, headers, b) = h.chat(&key, None, body("old", "hello")).await;
    assert_eq!(s, 410, "{b}");
    assert_eq!(error_code(&b), "model_retired");
    assert_eq!(h.mock.count(), 0);
    let rec = record_for(&h, &headers);
    assert_eq!(rec["decision"]["code"], "model_retired");
    assert_eq!(rec["model"]["version"], "1");
    assert_eq!(rec["output"]["disposition"], "refused");
}

#[tokio::test]
async fn baa_checklist_gates_phi_routing() {
    let h = start_registry().await;
    let key = h.key("clinician");
    // One point false: PHI is refused, nothing reaches the upstream.
    let (s, headers, b) = h
        .chat(&key, Some("p-17"), body("unchecked-model", NOTE))
        .await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(error_code(&b), "phi_route_denied");
    assert!(b.contains("baa_checklist_incomplete"), "{b}");
    assert_eq!(h.mock.count(), 0);
    let rec = record_for(&h, &headers);
    assert_eq!(rec["decision"]["routing"], "baa_checklist_incomplete");
    assert_eq!(rec["decision"]["baa_checklist"], "incomplete");
    assert_no_phi(&h.mock.all_text(), &NOTE_PHI);
    // Without PHI the request may go there (the BAA matters for PHI only).
    let (s, _, _) = h
        .chat(
            &key,
            None,
            body("unchecked-model", "What is a normal potassium range?"),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(h.mock.count(), 1);
    // Every point true: PHI is routed (tokenized).
    let (s, headers, b) = h
        .chat(&key, Some("p-17"), body("checked-model", NOTE))
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(h.mock.count(), 2);
    assert_no_phi(&h.mock.all_text(), &NOTE_PHI);
    let rec = record_for(&h, &headers);
    assert_eq!(rec["decision"]["routing"], "baa_active");
    assert_eq!(rec["decision"]["baa_checklist"], "complete");
    // A BAA without a checklist behaves as before, and says so in the record.
    let (s, headers, b) = h.chat(&key, Some("p-17"), body("baa-model", NOTE)).await;
    assert_eq!(s, 200, "{b}");
    let rec = record_for(&h, &headers);
    assert_eq!(rec["decision"]["routing"], "baa_active");
    assert_eq!(rec["decision"]["baa_checklist"], "not_recorded");
    // A private provider has no BAA: nothing to record.
    let (_, headers, _) = h.chat(&key, Some("p-17"), body("echo", NOTE)).await;
    assert!(record_for(&h, &headers)["decision"]["baa_checklist"].is_null());
}
