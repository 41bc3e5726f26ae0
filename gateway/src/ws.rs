//! One WebSocket connection: authentication at the upgrade, a reader that
//! parses and runs client messages, a writer that drains the bounded
//! outbound queue and pings, presence in the engine, and a close that always
//! completes its handshake (the reader keeps polling after our Close frame).

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use engine::{JobId, Op, WorkerHandle, WorkerStep};

use crate::watch::Topic;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use persistence::Role;
use tokio::sync::mpsc;

use crate::app::{viewer, AppState, Core};
use crate::auth::{bearer, User};
use crate::body::Params;
use crate::error::ApiError;
use crate::hub::{CloseReason, Conn, Outbound, PING_TIMEOUT};
use crate::limits::Budget;
use crate::wire::{job_id, parse_client, ClientMsg, Format, JobView, ServerMsg};

/// Most jobs one connection may follow with `subscribe`.
const MAX_SUBSCRIPTIONS: usize = 1000;
/// How long a closing connection waits for the peer's Close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
const NORMAL_CLOSE: CloseReason = CloseReason {
    code: 1000,
    reason: "bye",
};

pub async fn upgrade(
    State(app): State<AppState>,
    headers: HeaderMap,
    params: Params,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let token = bearer(&headers)
        .map(str::to_string)
        .or_else(|| params.0.get("token").cloned())
        .ok_or(ApiError::Unauthorized("missing token"))?;
    let user: User = app.auth.verify(&token)?.into();
    app.limit(Budget::Requests, &user.id, false)?;
    let format = match params.0.get("format").map(String::as_str) {
        None | Some("json") => Format::Json,
        Some("msgpack") => Format::Msgpack,
        Some(_) => return Err(ApiError::invalid("format", "must be json or msgpack")),
    };
    // The last `seq` the client saw: replay what it missed (resume).
    let since = params.num("since", 0u64..=u64::MAX)?;
    let ws =
        ws.map_err(|e| ApiError::InvalidInput(format!("upgrade: {}", e.body_text()).into()))?;
    let core = app.core()?;
    let handle = match user.role {
        Role::Worker => Some(core.ensure_worker(&app, &user).await?),
        Role::Resident | Role::Ops => None,
    };
    let wc = &app.cfg.websocket;
    // Hard cap on a frame; anything above max_body_bytes but below it is
    // answered with an error and the connection stays open.
    let hard_cap = app.cfg.limits.max_body_bytes.saturating_mul(4);
    let upgrade = ws
        .read_buffer_size(wc.read_buffer_bytes)
        .write_buffer_size(wc.write_buffer_bytes)
        .max_write_buffer_size(wc.max_write_buffer_bytes)
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap);
    Ok(upgrade.on_upgrade(move |socket| run(app, user, format, handle, since, socket)))
}

struct Session {
    app: AppState,
    user: User,
    handle: Option<WorkerHandle>,
    conn: Arc<Conn>,
    /// Jobs this connection subscribed to, to unsubscribe on close.
    subs: Arc<Mutex<HashSet<JobId>>>,
    last_seen: Arc<AtomicI64>,
}

async fn run(
    app: AppState,
    user: User,
    format: Format,
    handle: Option<WorkerHandle>,
    since: Option<u64>,
    socket: WebSocket,
) {
    app.socket_opened();
    app.metrics.connection(user.role, 1.0);
    let (tx, rx) = mpsc::channel(app.cfg.websocket.outbound_queue);
    let conn = Arc::new(Conn::new(app.hub.next_id(), tx));
    if let Some(core) = app.core_any() {
        presence(&app, core, &user, handle.as_ref(), &conn, Some(since)).await;
    }
    let (sink, stream) = socket.split();
    let last_seen = Arc::new(AtomicI64::new(app.clock.now().0));
    let subs = Arc::new(Mutex::new(HashSet::new()));
    let mut writer = tokio::spawn(write_loop(
        app.clone(),
        conn.clone(),
        rx,
        sink,
        format,
        last_seen.clone(),
    ));
    let session = Session {
        app: app.clone(),
        user: user.clone(),
        handle: handle.clone(),
        conn: conn.clone(),
        subs: subs.clone(),
        last_seen,
    };
    let reader = session.read_loop(stream);
    tokio::pin!(reader);
    let peer_ended = tokio::select! {
        _ = &mut reader => true,
        _ = &mut writer => false,
    };
    // Gone as far as dispatch is concerned, before any close handshake wait.
    unsubscribe_all(&app, &conn, &subs);
    if let Some(core) = app.core_any() {
        presence(&app, core, &user, handle.as_ref(), &conn, None).await;
    }
    if peer_ended {
        if conn.close_reason().is_some() {
            // The reader refused the peer's input (1007, 1009): the writer
            // is sending our Close frame.
            let _ = tokio::time::timeout(CLOSE_WAIT, &mut writer).await;
        }
        writer.abort();
    } else {
        // We sent Close: keep reading so the peer's Close completes the handshake.
        let _ = tokio::time::timeout(CLOSE_WAIT, &mut reader).await;
    }
    // Anything the reader subscribed while the close was under way.
    unsubscribe_all(&app, &conn, &subs);
    app.metrics.connection(user.role, -1.0);
    app.socket_closed();
}

fn unsubscribe_all(app: &AppState, conn: &Conn, subs: &Mutex<HashSet<JobId>>) {
    app.hub.watch.forget(conn.id);
    let subscribed: Vec<JobId> = subs.lock().expect("subs lock").drain().collect();
    for job in subscribed {
        app.hub.unsubscribe(&job, conn.id);
    }
}

/// Attaches (`open`: `Some(since)`) or detaches (`None`) the connection in
/// the hub — attaching replays what a resuming client missed and the open
/// offer — and keeps the worker's presence: the user's first socket sets
/// it, the last clears it, one at a time per worker so a connect and a
/// disconnect cannot reorder.
async fn presence(
    app: &AppState,
    core: &Core,
    user: &User,
    handle: Option<&WorkerHandle>,
    conn: &Arc<Conn>,
    open: Option<Option<u64>>,
) {
    let attach = |since: Option<u64>| {
        let room = app.cfg.websocket.outbound_queue;
        let now = app.clock.now().0;
        let resume = crate::hub::Resume {
            since,
            now_ms: now,
            room,
        };
        app.hub
            .attach_resume(&user.id, conn.clone(), resume, &app.metrics, || ())
    };
    let Some(h) = handle else {
        match open {
            Some(since) => {
                attach(since);
            }
            None => {
                app.hub.detach(&user.id, conn.id, || ());
            }
        }
        return;
    };
    core.with_presence(h.id(), || async {
        if let Some(since) = open {
            if attach(since).is_some() {
                if let Err(e) = core.backend.connected(app, &core.engine, h.id()).await {
                    tracing::warn!(error = %e, "presence not recorded");
                }
            }
        } else if app.hub.detach(&user.id, conn.id, || ()).is_some() {
            core.backend.disconnected(app, &core.engine, h.id()).await;
        }
    })
    .await
}

fn encode(m: &ServerMsg, format: Format) -> Message {
    match format {
        Format::Json => Message::Text(m.to_json().into()),
        Format::Msgpack => Message::Binary(m.to_msgpack().into()),
    }
}

async fn write_loop(
    app: AppState,
    conn: Arc<Conn>,
    mut rx: mpsc::Receiver<Outbound>,
    mut sink: SplitSink<WebSocket, Message>,
    format: Format,
    last_seen: Arc<AtomicI64>,
) {
    let every = Duration::from_secs(app.cfg.websocket.ping_interval_s);
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let why = loop {
        tokio::select! {
            biased;
            _ = conn.closed.notified() => break conn.close_reason().unwrap_or(NORMAL_CLOSE),
            m = rx.recv() => {
                let Some(m) = m else { break NORMAL_CLOSE };
                // A client that does not read blocks this send; the hub's
                // kill (queue full) must still get through.
                tokio::select! {
                    r = sink.send(encode(&m, format)) => if r.is_err() {
                        // The socket is gone: the reader must stop taking
                        // commands (and subscriptions) for it.
                        conn.close(NORMAL_CLOSE);
                        return;
                    },
                    _ = conn.closed.notified() => break conn.close_reason().unwrap_or(NORMAL_CLOSE),
                }
            }
            _ = ping.tick() => {
                let silent_ms = app.clock.now().0 - last_seen.load(Ordering::Relaxed);
                if silent_ms > 2 * every.as_millis() as i64 {
                    if conn.close(PING_TIMEOUT) {
                        app.metrics.ping_timeouts.increment(1);
                    }
                    continue;
                }
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    conn.close(NORMAL_CLOSE);
                    return;
                }
            }
        }
    };
    let frame = CloseFrame {
        code: why.code,
        reason: why.reason.into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

/// The close code for a frame the protocol refuses: 1007 for a text frame
/// that is not UTF-8, 1009 for a message over the hard size cap.
fn refusal(e: axum::Error) -> Option<CloseReason> {
    match *e.into_inner().downcast::<tungstenite::Error>().ok()? {
        tungstenite::Error::Utf8(_) => Some(CloseReason {
            code: 1007,
            reason: "text frame is not valid UTF-8",
        }),
        tungstenite::Error::Capacity(_) => Some(CloseReason {
            code: 1009,
            reason: "message too big",
        }),
        _ => None,
    }
}

impl Session {
    async fn read_loop(self, mut stream: SplitStream<WebSocket>) {
        while let Some(frame) = stream.next().await {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    // Input the protocol forbids gets its close code; any
                    // other error means the socket is gone.
                    if let Some(why) = refusal(e) {
                        self.conn.close(why);
                    }
                    break;
                }
            };
            self.last_seen
                .store(self.app.clock.now().0, Ordering::Relaxed);
            if self.conn.close_reason().is_some() {
                // Closing: only the peer's Close (or the end) matters now.
                continue;
            }
            match frame {
                Message::Text(t) => self.on_message(t.as_bytes(), Format::Json).await,
                Message::Binary(b) => self.on_message(&b, Format::Msgpack).await,
                Message::Ping(_) | Message::Pong(_) | Message::Close(_) => {}
            }
        }
    }

    fn reply(&self, m: ServerMsg) {
        self.conn.send(Arc::new(m), &self.app.metrics);
    }

    async fn on_message(&self, bytes: &[u8], format: Format) {
        let max = self.app.cfg.limits.max_body_bytes;
        if bytes.len() > max {
            self.app.metrics.msg_in("invalid");
            self.reply(ServerMsg::error(&ApiError::PayloadTooLarge(max), None));
            return;
        }
        let (msg, req_id) = match parse_client(bytes, format) {
            Ok(m) => m,
            Err((e, req_id)) => {
                self.app.metrics.msg_in("invalid");
                self.reply(ServerMsg::error(&e, req_id));
                return;
            }
        };
        self.app.metrics.msg_in(msg.name());
        let budget = match msg {
            ClientMsg::Location { .. } => Budget::Locations,
            _ => Budget::Requests,
        };
        let result = match self.app.limit(budget, &self.user.id, true) {
            Ok(()) => self.handle(msg).await,
            Err(e) => Err(e),
        };
        match (result, req_id) {
            (Ok(()), Some(req_id)) => self.reply(ServerMsg::Ack { req_id }),
            (Ok(()), None) => {}
            (Err(e), req_id) => self.reply(ServerMsg::error(&e, req_id)),
        }
    }

    fn worker(&self) -> Result<&WorkerHandle, ApiError> {
        self.handle
            .as_ref()
            .ok_or(ApiError::Forbidden("only workers send this message"))
    }

    async fn handle(&self, msg: ClientMsg) -> Result<(), ApiError> {
        let app = &self.app;
        let core = app.core()?;
        let op = match msg {
            ClientMsg::Ping => {
                self.reply(ServerMsg::Pong);
                return Ok(());
            }
            ClientMsg::Location { lat, lng } => {
                return core.position(app, self.worker()?, lat, lng).await;
            }
            ClientMsg::Availability { available } => Op::Available {
                worker: self.worker()?.id().clone(),
                on: available,
            },
            ClientMsg::Accept { job_id: j } => self.step(WorkerStep::Accept, &j)?,
            ClientMsg::Decline { job_id: j } => self.step(WorkerStep::Decline, &j)?,
            ClientMsg::Arrive { job_id: j } => self.step(WorkerStep::Arrive, &j)?,
            ClientMsg::Complete { job_id: j } => self.step(WorkerStep::Complete, &j)?,
            ClientMsg::Subscribe { job_id: j } => return self.subscribe(&j),
            ClientMsg::Watch { topics } => return self.watch(&topics, true),
            ClientMsg::Unwatch { topics } => return self.watch(&topics, false),
            ClientMsg::Unsubscribe { job_id: j } => {
                self.user.require(&[Role::Resident, Role::Ops])?;
                let id = job_id(&j)?;
                if self.subs.lock().expect("subs lock").remove(&id) {
                    app.hub.unsubscribe(&id, self.conn.id);
                }
                return Ok(());
            }
        };
        core.exec(app, op).await.map(|_| ()).map_err(ApiError::from)
    }

    fn step(&self, step: WorkerStep, job: &str) -> Result<Op, ApiError> {
        Ok(Op::Step {
            job: job_id(job)?,
            worker: self.worker()?.id().clone(),
            step,
        })
    }

    /// `watch` (`on`) or `unwatch` topics: ops only; every topic known
    /// before any is taken.
    fn watch(&self, topics: &[String], on: bool) -> Result<(), ApiError> {
        self.user.require(&[Role::Ops])?;
        let parsed: Vec<Topic> = topics
            .iter()
            .map(|t| Topic::parse(t))
            .collect::<Option<_>>()
            .filter(|t: &Vec<Topic>| !t.is_empty() && t.len() <= 2)
            .ok_or_else(|| ApiError::invalid("topics", "must name fleet and/or jobs"))?;
        if self.conn.close_reason().is_some() {
            return Err(ApiError::Unavailable("connection closing".into()));
        }
        let core = self.app.core()?;
        for t in parsed {
            if on {
                self.app.hub.watch.watch(
                    t,
                    &self.conn,
                    &core.engine,
                    self.app.clock.now(),
                    &self.app.metrics,
                );
            } else {
                self.app.hub.watch.unwatch(t, self.conn.id);
            }
        }
        Ok(())
    }

    fn subscribe(&self, job: &str) -> Result<(), ApiError> {
        self.user.require(&[Role::Resident, Role::Ops])?;
        if self.conn.close_reason().is_some() {
            return Err(ApiError::Unavailable("connection closing".into()));
        }
        let core = self.app.core()?;
        let id = job_id(job)?;
        let current = core
            .engine
            .job_for(&id, &viewer(&self.user))
            .ok_or(ApiError::NotFound("job not found"))?;
        {
            let mut subs = self.subs.lock().expect("subs lock");
            if subs.len() >= MAX_SUBSCRIPTIONS && !subs.contains(&id) {
                return Err(ApiError::invalid(
                    "job_id",
                    "too many subscriptions on this connection",
                ));
            }
            subs.insert(id.clone());
        }
        self.app.hub.subscribe(id, self.conn.clone());
        // The current state first, so the client never waits for a change to see it.
        self.reply(ServerMsg::Job {
            job: Box::new(JobView::from(&current)),
            seq: self.app.hub.backlogs.last_seq(),
        });
        Ok(())
    }
}
