//! The request flow, one function per route:
//! route → authenticate → admit (one call into the account's object) →
//! forward → settle (bind / release / observe) → respond with the
//! RateLimit fields. Every failure is a [`GovernorError`], turned into HTTP
//! by [`respond::error`] only.

use governor_core::admission::idempotency::IdempotencyKey;
use governor_core::admission::request::{AdmitRequest, Admitted};
use governor_core::auth::keys::{bearer_token, Caller};
use governor_core::auth::secret::Secret;
use governor_core::batch::{self, CreateAnswer, SeenBatch};
use governor_core::config::{Config, LogLevel};
use governor_core::lifecycle::limited;
use governor_core::lifecycle::settle;
use governor_core::queue::job::{is_reserved_idempotency_key, RESERVED_IDEMPOTENCY_PREFIX};
use governor_core::wire::calls::{self, AdmitReply, SettleReply, Status, StatusReply, Ticket, TicketReply};
use governor_core::wire::contract::Command;
use governor_core::wire::error::GovernorError;
use governor_core::wire::headers::PolicyState;
use governor_core::wire::prefer;
use governor_core::wire::route::{route, Proxy, ProxyKind, Route};
use worker::{Context, Date, Env, Response};

use crate::request::Request;

use crate::account_client;
use crate::analytics;
use crate::cors::{self, Origin};
use crate::generate;
use crate::log::Line;
use crate::proxy::{self, Body, Deadline, UpstreamAuth};
use crate::respond;
use crate::settings;
use crate::tally;
use crate::upstream;
use crate::webhook;

pub async fn handle(req: Request, env: &Env, ctx: &Context) -> Response {
    let config = settings::cached(env);
    let config = match config.as_ref() {
        Ok(c) => c,
        Err(e) => return respond::error(&e.clone().into(), &Origin::None),
    };
    let origin = cors::check(&req, &config.allowed_origins);
    match dispatch(req, env, ctx, config, &origin).await {
        Ok(resp) => resp,
        Err(err) => respond::error(&err, &origin),
    }
}

async fn dispatch(
    req: Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    origin: &Origin,
) -> Result<Response, GovernorError> {
    if *origin == Origin::Refused {
        return Err(GovernorError::OriginNotAllowed);
    }
    let path = req.path();
    let method = req.method().to_string();
    // The operations (admin API, metrics) are their own module tree; their
    // preflights are answered here (CORS is the data path's).
    if crate::ops::is_ops_path(&path) && !method.eq_ignore_ascii_case("OPTIONS") {
        return crate::ops::serve(req, env, config, origin, &path, &method).await;
    }
    match route(&method, &path, &config.limits) {
        Route::Preflight => Ok(Response::builder().with_status(204).with_headers(cors::preflight(origin)).empty()),
        Route::Health => Ok(respond::json_text(200, r#"{"ok":true}"#.into(), origin)),
        Route::NotFound => Err(GovernorError::NotFound),
        Route::Ambiguous => Err(GovernorError::AmbiguousPath),
        Route::MethodNotAllowed => Err(GovernorError::MethodNotAllowed),
        Route::Webhook(token) => {
            // Without GOVERNOR_WEBHOOK_KEY, tokens are signed with the deployment key.
            let config = crate::deployment::keyed(env, config).await?;
            webhook::handle(req, env, &config, &token).await
        }
        Route::Ticket { ticket: t, cancel } => ticket(&req, env, config, origin, t, cancel).await,
        // Served by crate::ops above.
        Route::Admin(_) | Route::Metrics => Err(GovernorError::NotFound),
        Route::Status => {
            let caller = authenticate(&req, config)?;
            match account_client::call(env, &caller.account, object_key(config, &caller), &Status).await? {
                StatusReply::Status(view) => Ok(respond::json_text(200, status_body(view.get(), config, &req), origin)),
                StatusReply::Refused(r) => Err(GovernorError::from(r)),
            }
        }
        Route::Ledger if crate::ledger::asks_as_admin(&req) => {
            crate::ledger::serve_admin(&req, env, config, origin).await
        }
        Route::Ledger => {
            let caller = authenticate(&req, config)?;
            crate::ledger::serve_caller(&req, env, config, origin, &caller, object_key(config, &caller)).await
        }
        Route::Proxy(p) if p.kind == ProxyKind::Create => {
            // Callbacks and the queue's sealed key need a key: the deployment's when none is set.
            let config = crate::deployment::keyed(env, config).await?;
            proxy_request(req, env, ctx, &config, origin, p).await
        }
        Route::Proxy(p) => proxy_request(req, env, ctx, config, origin, p).await,
    }
}

/// The account's status view (the object's JSON), plus the deployment's
/// webhook settings.
pub(crate) fn status_body(view: &str, config: &Config, req: &Request) -> String {
    let mut body = String::from(view.trim_end());
    if body.ends_with('}') {
        body.pop();
        body.push_str(",\"webhooks\":");
        body.push_str(&serde_json::to_string(&webhooks_status(config, req)).unwrap_or_else(|_| "null".into()));
        body.push('}');
    }
    body
}

/// How callbacks are checked: `verification` is `off` without
/// `SYNC_WEBHOOK_SECRET` (any holder of a callback URL can post to it).
fn webhooks_status(config: &Config, req: &Request) -> WebhooksView {
    WebhooksView {
        verification: if config.webhooks.sync_secret.is_some() { "on" } else { "off" },
        local_mode: webhook::local_mode(config, req),
        token_ttl_seconds: config.webhooks.token_ttl_s,
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhooksView {
    verification: &'static str,
    local_mode: bool,
    token_ttl_seconds: u64,
}

/// The key a caller presents: `x-api-key`, or `Authorization: Bearer`
/// (scheme in any case, RFC 9110 §11.1).
fn presented_key(req: &Request) -> Option<String> {
    let h = req.headers();
    h.get("x-api-key")
        .ok()
        .flatten()
        .or_else(|| h.get("authorization").ok().flatten().and_then(|v| bearer_token(&v).map(str::to_owned)))
}

/// The key the account object may keep in memory: only pass-through keys
/// travel (managed keys are in the object's own configuration).
fn object_key<'a>(config: &Config, caller: &'a Caller) -> Option<&'a Secret> {
    (!config.keys.is_managed()).then_some(&caller.upstream_key)
}

fn authenticate(req: &Request, config: &Config) -> Result<Caller, GovernorError> {
    Ok(config.keys.resolve(presented_key(req).as_deref())?)
}

/// Sync's URL for this request: the same path and query on `SYNC_API_BASE`.
fn upstream_url(config: &Config, req: &Request) -> String {
    let raw = req.inner().url();
    let (_, rest) = crate::request::split_url(&raw);
    format!("{}{}", config.api_base, rest)
}

async fn proxy_request(
    mut req: Request,
    env: &Env,
    ctx: &Context,
    config: &Config,
    origin: &Origin,
    p: Proxy,
) -> Result<Response, GovernorError> {
    let url = upstream_url(config, &req);
    let presented = presented_key(&req);
    if p.kind == ProxyKind::Public && presented.is_none() {
        // Sync serves these without a key, so there is no account to charge.
        let auth = if config.keys.is_managed() { UpstreamAuth::Managed(None) } else { UpstreamAuth::None };
        let deadline = Deadline { ms: config.timeouts.read_ms, whole: false };
        let mut resp = proxy::forward(&req, &url, Body::Stream(req.inner().body()), auth, deadline).await?;
        cors::decorate(resp.headers_mut(), origin);
        return Ok(resp);
    }
    let caller = config.keys.resolve(presented.as_deref())?;
    if crate::request::header(&req, "idempotency-key").is_some_and(|k| is_reserved_idempotency_key(&k)) {
        return Err(GovernorError::BadRequest(format!(
            "Idempotency-Key values starting with '{RESERVED_IDEMPOTENCY_PREFIX}' are reserved for the governor's queue"
        )));
    }
    let key = object_key(config, &caller);
    let prefer = prefer::parse(crate::request::header(&req, "prefer").as_deref());
    let wait_ms = prefer.wait_s.map(|s| s.saturating_mul(1_000).min(config.max_wait_ms));
    let creates = p.kind == ProxyKind::Create;
    let prepared = if creates && !generate::is_multipart(&req) {
        Some(generate::prepare_body(&mut req, config, &caller).await?)
    } else {
        None
    };
    let admit = if creates {
        generate::create_request(&req, config, &caller, &prefer, prepared.as_ref())?
    } else {
        AdmitRequest {
            class: p.class.clone(),
            report_in_flight: p.kind == ProxyKind::ReadsGenerations,
            batch: p.kind == ProxyKind::BatchCreate,
            ..AdmitRequest::default()
        }
    };
    let idempotency = admit.idempotency.clone();
    let class = admit.class.to_string();
    let mut admit = admit;
    let mut estimate_announced = false;
    if creates {
        let client = generate::client_name(&req, config, &caller);
        let (cost, announced) =
            crate::cost::request(env, config, &caller, key, client, prepared.as_ref(), &admit).await;
        (admit.cost, estimate_announced) = (Some(cost), announced);
        if let Some(job) = admit.enqueue.as_mut() {
            job.cost = admit.cost.clone().map(Box::new);
        }
    }
    admit.tally = tally::take(&caller.account);
    // The client it counts toward (its share, its own limits).
    let client = generate::client_name(&req, config, &caller);
    admit.client = Some(governor_core::admission::request::ClientRef { account: caller.account.clone(), client });
    let mut decision = Decision {
        config,
        env,
        account: &caller.account,
        client: &caller.client,
        class: &class,
        waited_ms: 0,
        added_ms: 0,
    };
    let started = Date::now().as_millis();
    let reply = match generate::admit(env, &caller.account, key, admit, wait_ms, &req, &mut decision.waited_ms).await {
        Ok(reply) => Some(reply),
        // FAIL_MODE=open: the account's object cannot decide; forward
        // without a decision (no permit, nothing settled) rather than fail
        // the client. Logged and counted; reconciliation adopts a
        // generation created this way once the object is back.
        Err(e @ GovernorError::Unavailable(_)) if config.fail_open => {
            decision.log(LogLevel::Warn, "fail_open", Some(&e.message()), None, None);
            tally::fail_open(&caller.account);
            None
        }
        Err(e) => return Err(e),
    };
    let undecided = reply.is_none();
    let admitted = match reply {
        None => Admitted::default(),
        Some(AdmitReply::Admitted(a)) => a,
        Some(AdmitReply::Rejected(r)) => {
            decision.log(LogLevel::Info, "refused", Some(r.reason.name()), None, None);
            return Err(GovernorError::Limited(r));
        }
        Some(AdmitReply::Queued(ticket)) => {
            decision.log(LogLevel::Info, "queued", None, None, None);
            return Ok(generate::queued(&ticket, origin));
        }
        Some(AdmitReply::Replay(r)) => {
            let body = match &r.refetch {
                // Too large to keep: Sync's current view of the same generation.
                Some(id) => upstream::generation(&config.api_base, &caller.upstream_key, id, config.timeouts.read_ms)
                    .await
                    .ok_or_else(|| GovernorError::Upstream("reading the replayed generation failed".into()))?,
                None => r.body,
            };
            return Ok(generate::replayed(r.status, body, origin));
        }
        Some(AdmitReply::Refused(r)) => return Err(GovernorError::from(r)),
    };
    let body = match prepared {
        Some(p) => Body::Bytes(p.bytes),
        None => Body::Stream(req.inner().body()),
    };
    let auth = if config.keys.is_managed() {
        UpstreamAuth::Managed(Some(&caller.upstream_key))
    } else {
        UpstreamAuth::Key(&caller.upstream_key)
    };
    // A create is read whole inside its box (the governor reads it anyway);
    // anything else is boxed until Sync's response head.
    let deadline =
        Deadline { ms: config.timeouts.forward_ms(req.method().as_ref(), &req.path(), creates), whole: creates };
    let forwarded_at = Date::now().as_millis();
    let resp = match proxy::forward(&req, &url, body, auth, deadline).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(permit) = admitted.permit {
                // Sync may have taken it before the connection failed or the
                // time box ended: the permit waits for a listing to tell.
                let _ = account_client::call(env, &caller.account, key, &calls::Settle::unsettled(permit)).await;
            }
            if let Some(permit) = admitted.batch_permit {
                let command = Command::BatchCreated { permit, answer: CreateAnswer::Unknown, retry_after_ms: None };
                if let Some(settle) = calls::Settle::new(command) {
                    let _ = account_client::call(env, &caller.account, key, &settle).await;
                }
            }
            decision.log(LogLevel::Warn, "upstream_error", Some(e.code()), Some(e.status()), None);
            return Err(e);
        }
    };
    let settle = Settle {
        account: &caller.account,
        key,
        proxy: &p,
        permit: admitted.permit,
        batch_permit: admitted.batch_permit,
        batch_result: batch_result_id(&req.path()),
        idempotency,
        in_flight: &admitted.in_flight,
        retry_cap_ms: config.limits.backoff.cap_ms,
    };
    let upstream_status = resp.status_code();
    let unproven = crate::provisional::after_answer(env, &caller.account, key, &admitted, upstream_status).await;
    if unproven {
        decision.account = crate::provisional::UNVERIFIED;
    }
    // The directory hears of accounts Sync knows: a key Sync refuses (401,
    // 403) is never listed, so throwaway keys cannot push real accounts out.
    if (admitted.announce || estimate_announced) && !matches!(upstream_status, 401 | 403) {
        let (env, account) = (env.clone(), caller.account.clone());
        ctx.wait_until(async move { crate::directory::announce(&env, &account, Date::now().as_millis()).await });
    }
    let settled = if undecided {
        let mut resp = resp;
        let _ = resp.headers_mut().set("x-governor-decision", "fail-open");
        Ok((resp, None))
    } else {
        settle_response(env, ctx, settle, resp).await
    };
    // What the governor added: everything but Sync's time and the deliberate wait.
    let added = forwarded_at.saturating_sub(started).saturating_sub(decision.waited_ms);
    if !unproven {
        tally::record(&caller.account, upstream_status, added);
    }
    decision.added_ms = added;
    decision.log(
        LogLevel::Info,
        if undecided { "forwarded_undecided" } else { "admitted" },
        None,
        Some(upstream_status),
        settled.as_ref().ok().and_then(|s| s.1.as_deref()),
    );
    let (mut resp, _) = settled?;
    if let Some(w) = prefer.wait_s.filter(|_| wait_ms.is_some()) {
        let _ = resp.headers_mut().set("preference-applied", &format!("wait={w}"));
    }
    Ok(finish(resp, &admitted.policies, origin))
}

/// `GET` / `DELETE /governor/v1/queue/{ticket}`.
async fn ticket(
    req: &Request,
    env: &Env,
    config: &Config,
    origin: &Origin,
    ticket: String,
    cancel: bool,
) -> Result<Response, GovernorError> {
    let caller = authenticate(req, config)?;
    // Managed mode: a ticket belongs to the client key that queued it.
    let client = config.keys.is_managed().then(|| caller.client.clone());
    let call = Ticket { ticket, client, cancel };
    match account_client::call(env, &caller.account, object_key(config, &caller), &call).await? {
        TicketReply::Ticket(view) => Ok(respond::json_text(200, view.get().to_owned(), origin)),
        TicketReply::Refused(r) => Err(GovernorError::from(r)),
    }
}

/// What settling a response needs to know.
struct Settle<'a> {
    account: &'a str,
    key: Option<&'a Secret>,
    proxy: &'a Proxy,
    permit: Option<u64>,
    /// The batch permit of a batch create.
    batch_permit: Option<u64>,
    /// The batch whose result this read asks for (`/v2/batches/{id}/result`).
    batch_result: Option<String>,
    idempotency: Option<IdempotencyKey>,
    in_flight: &'a [String],
    /// `UPSTREAM_BACKOFF_CAP_MS`: the most an upstream `Retry-After` counts for.
    retry_cap_ms: u64,
}

/// Tell the account what Sync's answer means, and return that answer. A
/// Sync 429 becomes the governor's own 429 with an honest Retry-After.
async fn settle_response(
    env: &Env,
    ctx: &Context,
    s: Settle<'_>,
    resp: Response,
) -> Result<(Response, Option<String>), GovernorError> {
    let (p, permit) = (s.proxy, s.permit);
    let status = resp.status_code();
    let retry_after = proxy::upstream_retry_after_ms(&resp, s.retry_cap_ms);
    let mut ended = None;
    let (resp, command) = match (&p.kind, permit) {
        (ProxyKind::Create, Some(permit)) => {
            let (resp, bytes) = proxy::read(resp).await;
            ended = settle::ended_in_create(status, &bytes);
            (resp, settle::after_create(permit, status, &bytes, retry_after, s.idempotency))
        }
        (ProxyKind::BatchCreate, _) if s.batch_permit.is_some() => {
            let (resp, bytes) = proxy::read(resp).await;
            let answer = batch::answer::after_create(status, &bytes);
            let permit = s.batch_permit.unwrap_or_default();
            (resp, Some(Command::BatchCreated { permit, answer, retry_after_ms: retry_after }))
        }
        (ProxyKind::ReadsBatches, _) if (300..400).contains(&status) => {
            // The result is served (behind its redirect) once the batch ended.
            let seen = s.batch_result.clone().map(|id| SeenBatch { id, terminal: true, pending: Some(0) });
            (resp, seen.map(|b| Command::BatchesSeen { batches: vec![b] }))
        }
        (ProxyKind::ReadsBatches, _) if (200..300).contains(&status) && s.batch_result.is_none() => {
            let (resp, bytes) = proxy::read(resp).await;
            let batches: Vec<SeenBatch> = batch::answer::seen(&bytes).into_iter().filter(|b| b.terminal).collect();
            (resp, (!batches.is_empty()).then_some(Command::BatchesSeen { batches }))
        }
        (ProxyKind::ReadsGenerations, _) if (200..300).contains(&status) && !s.in_flight.is_empty() => {
            let (resp, bytes) = proxy::read(resp).await;
            (resp, settle::observed(&bytes, s.in_flight))
        }
        _ if status == 429 => {
            let (resp, bytes) = proxy::read(resp).await;
            let kind = limited::limit_kind(&bytes);
            (
                resp,
                Some(Command::UpstreamLimited {
                    class: p.class.clone(),
                    kind,
                    permit: None,
                    retry_after_ms: retry_after,
                }),
            )
        }
        _ => (resp, None),
    };
    let generation = match &command {
        Some(Command::Bind { generation, .. }) => Some(generation.clone()),
        _ => None,
    };
    let limited = matches!(
        command,
        Some(
            Command::UpstreamLimited { .. }
                | Command::BatchCreated { answer: CreateAnswer::ConcurrencyLimited | CreateAnswer::RateLimited, .. }
        )
    );
    match command.and_then(calls::Settle::new) {
        // The client's answer depends on this one: the governor's own 429.
        Some(settle) if limited => match account_client::call(env, s.account, s.key, &settle).await {
            Ok(SettleReply::Rejected(r)) => return Err(GovernorError::Limited(r)),
            Ok(SettleReply::Ack { .. } | SettleReply::Refused(_)) => {}
            Err(e) => worker::console_error!("settling with the account failed: {}", e.message()),
        },
        // Bind, release, observe: the answer does not wait for them, and they
        // run to the end even when the client goes away.
        Some(settle) => {
            let (env, account, key) = (env.clone(), s.account.to_owned(), s.key.cloned());
            ctx.wait_until(async move {
                for settle in std::iter::once(settle).chain(ended.and_then(calls::Settle::new)) {
                    if let Err(e) = account_client::call(&env, &account, key.as_ref(), &settle).await {
                        worker::console_error!("settling with the account failed: {}", e.message());
                    }
                }
            });
        }
        None => {}
    }
    Ok((resp, generation))
}

/// `/v2/batches/{id}/result` (as Sync routes it): the batch id.
fn batch_result_id(path: &str) -> Option<String> {
    let canonical = governor_core::wire::path::canonical_path(path).ok()?;
    let id = canonical.strip_prefix("/v2/batches/")?.strip_suffix("/result")?;
    // The canonical form is lower-cased: take the id as the client spelled it.
    let start = "/v2/batches/".len();
    path.get(start..start + id.len()).filter(|s| !s.is_empty() && !s.contains('/')).map(str::to_owned)
}

fn finish(mut resp: Response, policies: &[PolicyState], origin: &Origin) -> Response {
    let headers = resp.headers_mut();
    respond::rate_headers(headers, policies);
    cors::decorate(headers, origin);
    resp
}

/// One request's decision, for its log line.
struct Decision<'a> {
    config: &'a Config,
    account: &'a str,
    client: &'a str,
    class: &'a str,
    env: &'a Env,
    /// Time spent held in line (`Prefer: wait`).
    waited_ms: u64,
    /// Time the governor added to a forwarded request.
    added_ms: u64,
}

impl Decision<'_> {
    /// The log line (if `LOG_LEVEL` lets it through) and the Analytics
    /// Engine data point (if `METRICS` is bound), independently.
    fn log(&self, level: LogLevel, outcome: &str, reason: Option<&str>, status: Option<u16>, generation: Option<&str>) {
        let (account, client, class, wait_ms, added_ms) =
            (self.account, self.client, self.class, self.waited_ms, self.added_ms);
        let point = analytics::Point { account, client, class, outcome, reason, generation, wait_ms, status, added_ms };
        analytics::write(self.env, &point);
        if level < self.config.log_level {
            return;
        }
        let mut line = Line::new(level, "decision")
            .str("account", self.account)
            .str("client", self.client)
            .str("class", self.class)
            .str("outcome", outcome)
            .opt("reason", reason)
            .num("waitMs", self.waited_ms)
            .opt("generationId", generation);
        if let Some(s) = status {
            line = line.num("upstreamStatus", u64::from(s));
        }
        line.emit(self.config.log_level);
    }
}
