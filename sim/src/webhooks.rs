//! Webhook delivery: one POST of the generation object when it turns
//! terminal, and of the batch object at each batch status change, signed with `Sync-Signature` when a secret is set, with drop,
//! duplicate, delay and reorder faults. No retries (Sync documents none).

use std::sync::Arc;
use std::time::Duration;

use crate::generation::Generation;
use crate::state::{lock, Sim};
use crate::util;
use crate::webhook_log::{Delivery, Hook};

/// Schedules the webhook of a generation that just turned terminal.
pub fn dispatch(sim: &Arc<Sim>, url: String, g: &Generation) {
    let drop_rate = sim.cfg().webhook_drop_rate;
    send(
        sim,
        Hook { kind: "generation", id: g.id.clone(), status: g.status.as_str(), body: g.to_json(), drop_rate },
        url,
    );
}

/// Schedules one webhook with the delivery faults of the configuration.
pub fn send(sim: &Arc<Sim>, hook: Hook, url: String) {
    let cfg = sim.cfg();
    let epoch = sim.current_epoch();
    let drop_it = sim.roll(hook.drop_rate);
    let dup = !drop_it && sim.roll(cfg.webhook_dup_rate);
    let delay = cfg.webhook_delay_ms + sim.random_upto(cfg.webhook_reorder_ms);
    let status = hook.status;
    let kind = hook.kind;
    {
        let mut log = lock(&sim.webhooks);
        log.stats.scheduled += 1;
        if drop_it {
            log.stats.dropped += 1;
            log.record(Delivery {
                kind,
                generation_id: hook.id.clone(),
                generation_status: status,
                url,
                copy: 1,
                dropped: true,
                status: None,
                error: None,
                signature: None,
                at_ms: util::now_unix_ms(),
            });
            return;
        }
        if dup {
            log.stats.duplicated += 1;
        }
    }
    let body = match serde_json::to_vec(&hook.body) {
        Ok(b) => b,
        Err(_) => return,
    };
    let sim = sim.clone();
    let gen_id = hook.id;
    let secret = cfg.webhook_secret.clone();
    tokio::spawn(async move {
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let t = util::now_unix_ms() / 1000;
        let signature = secret.as_deref().map(|s| util::sign_webhook(s, t, &body));
        for copy in 1..=(if dup { 2u8 } else { 1 }) {
            if sim.current_epoch() != epoch {
                return;
            }
            let mut req = sim
                .http
                .post(&url)
                .header("content-type", "application/json")
                .header("user-agent", "sync-sim-webhooks/1")
                .body(body.clone());
            if let Some(sig) = &signature {
                req = req.header("Sync-Signature", sig.as_str());
            }
            lock(&sim.webhooks).stats.sent += 1;
            let (code, error) = match req.send().await {
                Ok(resp) => (Some(resp.status().as_u16()), None),
                Err(e) => (None, Some(e.to_string())),
            };
            if sim.current_epoch() != epoch {
                return;
            }
            let ok = code.is_some_and(|c| (200..300).contains(&c));
            let mut log = lock(&sim.webhooks);
            if ok {
                log.stats.delivered += 1;
            } else {
                log.stats.failed += 1;
            }
            log.record(Delivery {
                kind,
                generation_id: gen_id.clone(),
                generation_status: status,
                url: url.clone(),
                copy,
                dropped: false,
                status: code,
                error,
                signature: signature.clone(),
                at_ms: util::now_unix_ms(),
            });
        }
    });
}
