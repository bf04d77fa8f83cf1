//! The server's routes, all read-only (`GET`, and `HEAD` with it): the session list `/`, a
//! session `/session/<id>`, an exchange `/exchange/<id>` and its bodies, and the event streams
//! that tell open pages something changed. Every request first passes the access check
//! (`access`) and every answer carries the security headers. Pages are built on blocking
//! threads, a few at a time, each within a deadline; the log's index is shared, and a page
//! holds the index's lock only to pick the heads it needs.

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, watch};

use super::access::{Access, Verdict};
use super::follow::LiveLog;
use super::pages::{self, Filter, ListInfo, Place, Row};
use crate::log::{Head, Index};
use crate::session::{self, Selection, Session};

/// How long a request waits for the first index of the log.
const READY_WAIT: Duration = Duration::from_secs(60);
/// How long a page waits for a free builder, and how long building it may take.
const BUSY_WAIT: Duration = Duration::from_secs(10);
const BUILD_TIMEOUT: Duration = Duration::from_secs(30);
/// An event stream ends after this (the browser opens a new one at once).
const STREAM_LIFETIME: Duration = Duration::from_secs(600);
/// A session with an exchange that ended this recently is shown as going on.
pub const ACTIVE_MINUTES: u64 = 5;
/// The list shows at most this many sessions (the filter narrows it).
const MAX_ROWS: usize = 500;

/// What the handlers share.
pub struct App {
    pub live: RwLock<Option<LiveLog>>,
    /// The index's generation (0: not indexed yet); open pages' streams wait on it.
    pub changes: watch::Sender<u64>,
    pub prices: pricing::PriceTable,
    pub access: Access,
    pub log_file: PathBuf,
    /// First prompt of each session: (session id) -> (exchange it was read from, text).
    titles: Mutex<HashMap<String, (String, String)>>,
    /// Page builds running at once (each may read a session's lines and hold its requests).
    builds: Arc<Semaphore>,
    /// Open event streams.
    streams: Arc<Semaphore>,
}

impl App {
    pub fn new(
        prices: pricing::PriceTable,
        access: Access,
        log_file: PathBuf,
        max_connections: usize,
    ) -> App {
        let builds = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
        App {
            live: RwLock::new(None),
            changes: watch::Sender::new(0),
            prices,
            access,
            log_file,
            titles: Mutex::new(HashMap::new()),
            builds: Arc::new(Semaphore::new(builds)),
            // Leave connections for pages when every other one is a stream.
            streams: Arc::new(Semaphore::new(max_connections.saturating_sub(8).max(1))),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<LiveLog>> {
        self.live.read().unwrap_or_else(|e| e.into_inner())
    }

    async fn wait_ready(&self) -> bool {
        let mut rx = self.changes.subscribe();
        tokio::time::timeout(READY_WAIT, rx.wait_for(|g| *g > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Runs `build` on a blocking thread once the log is indexed and a builder is free.
    async fn build(
        self: &Arc<Self>,
        build: impl FnOnce(&App) -> Response + Send + 'static,
    ) -> Response {
        if !self.wait_ready().await {
            return not_ready();
        }
        let permit =
            match tokio::time::timeout(BUSY_WAIT, self.builds.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                _ => {
                    return page(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Busy",
                        "Other pages are being built; try again shortly.",
                    );
                }
            };
        let app = self.clone();
        // The permit is released when the work ends, even if the answer timed out first.
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            build(&app)
        });
        match tokio::time::timeout(BUILD_TIMEOUT, task).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "a page build failed");
                page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Error",
                    "Building the page failed; the server's output says why.",
                )
            }
            Err(_) => page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Too slow",
                "Building the page took longer than 30 s.",
            ),
        }
    }

    /// What a page's event stream compares: the index generation for the list, the number
    /// of exchanges for a session.
    fn version(&self, session: Option<&str>) -> String {
        let guard = self.read();
        let Some(live) = guard.as_ref() else {
            return "0".into();
        };
        match session {
            None => live.generation.to_string(),
            Some(what) => {
                let n = live.count(what);
                if n > 0 {
                    return n.to_string();
                }
                match session::select(&live.index, what) {
                    Ok(Selection::Session(_, heads)) => heads.len().to_string(),
                    _ => "0".into(),
                }
            }
        }
    }

    fn title(&self, index: &Index, id: &str, heads: &[&Head]) -> String {
        let Some(first) = heads
            .iter()
            .find(|h| session::Role::of(h) == session::Role::Main)
            .or(heads.first())
        else {
            return String::new();
        };
        let mut titles = self.titles.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((from, title)) = titles.get(id)
            && *from == first.id
        {
            return title.clone();
        }
        let title = index
            .read_line(first.location)
            .ok()
            .and_then(|line| first_message(&line))
            .map(|m| pages::first_prompt(&m))
            .unwrap_or_default();
        titles.insert(id.to_string(), (first.id.clone(), title.clone()));
        title
    }

    fn list_page(&self, filter: &Filter) -> Response {
        let guard = self.read();
        let Some(live) = guard.as_ref() else {
            return not_ready();
        };
        let index = &live.index;
        let day = |d: &str| humantime::parse_rfc3339_weak(&format!("{d}T00:00:00Z")).ok();
        let from = day(filter.from.trim());
        let to = day(filter.to.trim()).map(|t| t + Duration::from_secs(86_400));
        let q = filter.q.trim().to_lowercase();
        let now = SystemTime::now();
        let mut all: Vec<(Option<SystemTime>, &str, Vec<&Head>, session::Summary)> =
            session::by_session(index)
                .into_iter()
                .map(|(id, heads)| {
                    let summary = session::summarize(id, &heads, &self.prices);
                    (heads[0].start, id, heads, summary)
                })
                .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(b.3.started_at.cmp(&a.3.started_at)));
        let mut models: Vec<String> = all.iter().flat_map(|s| s.3.models.clone()).collect();
        models.sort();
        models.dedup();
        let sessions = all.len();
        let mut matched = Vec::new();
        for (_, id, heads, summary) in &all {
            let end = humantime::parse_rfc3339_weak(&summary.ended_at).ok();
            if from.is_some_and(|from| end.is_none_or(|e| e < from))
                || to.is_some_and(|to| heads[0].start.is_none_or(|s| s >= to))
                || (!filter.model.is_empty() && !summary.models.contains(&filter.model))
            {
                continue;
            }
            let wanted = q.is_empty() || matched.len() < MAX_ROWS;
            let title = if wanted {
                self.title(index, id, heads)
            } else {
                String::new()
            };
            if !q.is_empty()
                && !id.to_lowercase().contains(&q)
                && !title.to_lowercase().contains(&q)
                && !summary.models.iter().any(|m| m.to_lowercase().contains(&q))
            {
                continue;
            }
            let active = end.is_some_and(|e| {
                now.duration_since(e)
                    .is_ok_and(|ago| ago < Duration::from_secs(ACTIVE_MINUTES * 60))
                    || e > now
            });
            matched.push((summary, title, active));
        }
        let rows: Vec<Row<'_>> = matched
            .iter()
            .take(MAX_ROWS)
            .map(|(summary, title, active)| Row {
                summary,
                title,
                active: *active,
            })
            .collect();
        let info = ListInfo {
            sessions,
            matched: matched.len(),
            exchanges: index.heads.len(),
            bytes: index.bytes,
            segments: index.files.iter().filter(|f| f.is_some()).count(),
            skipped: &index.skipped,
            models: &models,
            price_date: &self.prices.date,
            generation: live.generation,
            active_minutes: ACTIVE_MINUTES,
        };
        Html(pages::list(filter, &rows, &info)).into_response()
    }

    fn session_page(&self, what: &str) -> Response {
        let guard = self.read();
        let Some(live) = guard.as_ref() else {
            return not_ready();
        };
        let (id, heads) = match session::select(&live.index, what) {
            Ok(Selection::Session(id, heads)) => (id.to_string(), heads),
            Ok(Selection::Exchange(_, _, exchange)) => {
                return redirect(&format!("/exchange/{}", pages::url_segment(&exchange)));
            }
            Err(e) => return page(StatusCode::NOT_FOUND, "No such session", &e.to_string()),
        };
        let snapshot = snapshot(&live.index, heads.iter().map(|h| (*h).clone()).collect());
        drop(guard);
        let refs: Vec<&Head> = snapshot.heads.iter().collect();
        let session = match Session::load(&snapshot, &id, &refs, &self.prices) {
            Ok(s) => s,
            Err(e) => {
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Cannot read the session",
                    &e.to_string(),
                );
            }
        };
        let rendered = crate::html::render(&session, &snapshot.skipped, &self.prices.date);
        let events = format!(
            "/session/{}/events?v={}",
            pages::url_segment(what),
            session.exchanges.len()
        );
        Html(pages::session(&rendered, &session, &events)).into_response()
    }

    /// The exchange's head, its number in its session, and its line.
    fn exchange(
        &self,
        id: &str,
    ) -> Result<(Head, usize, Result<String, crate::Error>), Box<Response>> {
        let guard = self.read();
        let Some(live) = guard.as_ref() else {
            return Err(Box::new(not_ready()));
        };
        let index = &live.index;
        let Some(head) = index.heads.iter().find(|h| h.id == id) else {
            return Err(Box::new(page(
                StatusCode::NOT_FOUND,
                "No such exchange",
                &format!(
                    "The log holds no exchange {id} (a deleted segment takes its exchanges with it)."
                ),
            )));
        };
        // Numbered as `html` numbers a session's exchanges: by start time.
        let number = match &head.session_id {
            Some(s) => {
                let mut mine: Vec<&Head> = index
                    .heads
                    .iter()
                    .filter(|h| h.session_id.as_ref() == Some(s))
                    .collect();
                mine.sort_by(|a, b| a.start.cmp(&b.start).then(a.started_at.cmp(&b.started_at)));
                mine.iter().position(|h| h.id == id).map_or(0, |p| p + 1)
            }
            None => 0,
        };
        let (head, files) = (head.clone(), snapshot(index, Vec::new()));
        drop(guard);
        let line = files.read_line(head.location);
        Ok((head, number, line))
    }
}

/// An index holding only `heads`, reading through the same files.
fn snapshot(index: &Index, heads: Vec<Head>) -> Index {
    Index {
        segments: index.segments.clone(),
        files: index.files.clone(),
        heads,
        skipped: index.skipped,
        bytes: index.bytes,
    }
}

/// The first message of a record's request, read without building the rest of the line.
fn first_message(line: &str) -> Option<serde_json::Value> {
    #[derive(Deserialize)]
    struct Line<'a> {
        #[serde(borrow)]
        request: Request_<'a>,
    }
    #[derive(Deserialize)]
    struct Request_<'a> {
        #[serde(borrow)]
        body: Body<'a>,
    }
    #[derive(Deserialize)]
    struct Body<'a> {
        #[serde(borrow, default)]
        json: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Messages<'a> {
        #[serde(borrow, default)]
        messages: Vec<&'a RawValue>,
    }
    let line: Line<'_> = serde_json::from_str(line).ok()?;
    let messages: Messages<'_> = serde_json::from_str(line.request.body.json?.get()).ok()?;
    serde_json::from_str(messages.messages.first()?.get()).ok()
}

fn not_ready() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Still reading the log",
        "The traffic log is still being indexed (or cannot be read: see the server's output); try again shortly.",
    )
}

fn page(status: StatusCode, title: &str, message: &str) -> Response {
    (status, Html(pages::error(title, message))).into_response()
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => page(
            StatusCode::BAD_REQUEST,
            "Bad address",
            "That address cannot be followed.",
        ),
    }
}

/// 32 lowercase hex digits, as the proxy writes them; nothing else reaches the index lookup.
pub fn is_exchange_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn not_an_exchange(id: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Not an exchange id",
        &format!(
            "{:?} is not an exchange id: an exchange id is 32 lowercase hex digits, as in the log's `id`.",
            id.chars().take(80).collect::<String>()
        ),
    )
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/events", get(list_events))
        .route("/session/{id}", get(session_page))
        .route("/session/{id}/events", get(session_events))
        .route("/exchange/{id}", get(exchange_page))
        .route("/exchange/{id}/{file}", get(download))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), guard))
        .with_state(app)
}

/// The access check, and the security headers on every answer.
async fn guard(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let mut response = match app.access.check(request.uri(), request.headers()) {
        Verdict::Allow => next.run(request).await,
        Verdict::Login { location, cookie } => {
            let mut r = redirect(&location);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Verdict::Denied => page(
            StatusCode::UNAUTHORIZED,
            "This viewer needs its token",
            "Open the viewer's address with its token (http://HOST:PORT/t/TOKEN/, the token being \
             the server's VIEWER_TOKEN; claude-sandbox prints that address), or send \
             `Authorization: Bearer TOKEN`.",
        ),
        Verdict::WrongHost => page(
            StatusCode::FORBIDDEN,
            "Wrong host name",
            "Without a token this viewer answers only requests addressed to localhost or a \
             loopback address (a page elsewhere could otherwise reach it through a host name \
             pointed at 127.0.0.1): open http://127.0.0.1:PORT/, or give the server a token.",
        ),
    };
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let policy = if h
            .get(header::CONTENT_TYPE)
            .is_some_and(|t| t.as_bytes().starts_with(b"text/html"))
        {
            pages::header_policy()
        } else {
            "default-src 'none'; frame-ancestors 'none'; sandbox".to_string()
        };
        if let Ok(v) = HeaderValue::from_str(&policy) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        "The viewer has the session list at /, sessions at /session/ID and exchanges at /exchange/ID.",
    )
}

async fn list(State(app): State<Arc<App>>, Query(filter): Query<Filter>) -> Response {
    app.build(move |app| app.list_page(&filter)).await
}

async fn session_page(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    if id.is_empty() || id.len() > 256 {
        return page(
            StatusCode::NOT_FOUND,
            "No such session",
            "Session ids are shorter.",
        );
    }
    app.build(move |app| app.session_page(&id)).await
}

async fn exchange_page(State(app): State<Arc<App>>, Path(id): Path<String>) -> Response {
    if !is_exchange_id(&id) {
        return not_an_exchange(&id);
    }
    app.build(move |app| match app.exchange(&id) {
        Err(response) => *response,
        Ok((head, number, line)) => {
            let cost = session::tokens_and_cost(&head, &app.prices).1;
            let place = Place {
                session: head.session_id.as_deref(),
                number,
            };
            match line {
                Ok(line) => Html(pages::exchange(&head, &place, Some(&line), cost)).into_response(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read an exchange's line");
                    let mut head = head.clone();
                    head.error = Some(format!("its line cannot be read: {e}"));
                    Html(pages::exchange(&head, &place, None, cost)).into_response()
                }
            }
        }
    })
    .await
}

async fn download(
    State(app): State<Arc<App>>,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    if !is_exchange_id(&id) {
        return not_an_exchange(&id);
    }
    if !matches!(
        file.as_str(),
        "request.json" | "response.json" | "record.json"
    ) {
        return page(
            StatusCode::NOT_FOUND,
            "Not found",
            "An exchange offers request.json, response.json and record.json.",
        );
    }
    app.build(move |app| {
        let line = match app.exchange(&id) {
            Err(response) => return *response,
            Ok((_, _, Ok(line))) => line,
            Ok((_, _, Err(e))) => {
                return page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Cannot read the exchange",
                    &e.to_string(),
                );
            }
        };
        let body = if file == "record.json" {
            Some(pages::Download {
                bytes: line.clone().into_bytes(),
                content_type: "application/json",
                extension: "json",
            })
        } else {
            serde_json::from_str::<pages::RecordParts<'_>>(&line)
                .ok()
                .and_then(|parts| match file.as_str() {
                    "request.json" => parts.request?.body?.download(),
                    _ => {
                        let response = parts.response?;
                        match response.sse.as_ref().and_then(|s| s.message) {
                            Some(m) => Some(pages::Download {
                                bytes: m.get().as_bytes().to_vec(),
                                content_type: "application/json",
                                extension: "json",
                            }),
                            None => response.body?.download(),
                        }
                    }
                })
        };
        let Some(body) = body else {
            return page(
                StatusCode::NOT_FOUND,
                "No such body",
                "This exchange has no such body in the log.",
            );
        };
        let name = match file.as_str() {
            "record.json" => format!("{id}.json"),
            f => format!("{id}-{}.{}", f.trim_end_matches(".json"), body.extension),
        };
        (
            [
                (header::CONTENT_TYPE, body.content_type.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{name}\""),
                ),
            ],
            body.bytes,
        )
            .into_response()
    })
    .await
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    v: String,
}

async fn list_events(State(app): State<Arc<App>>, Query(since): Query<Since>) -> Response {
    events(app, since.v, None)
}

async fn session_events(
    State(app): State<Arc<App>>,
    Path(id): Path<String>,
    Query(since): Query<Since>,
) -> Response {
    events(app, since.v, Some(id))
}

/// A stream that says `changed` (with the new version) whenever the version of the page it
/// serves differs from the last one it said (at first: the page's own, `v`).
fn events(app: Arc<App>, seen: String, session: Option<String>) -> Response {
    let Ok(permit) = app.streams.clone().try_acquire_owned() else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Busy",
            "Too many pages are following the log.",
        );
    };
    let deadline = tokio::time::Instant::now() + STREAM_LIFETIME;
    let rx = app.changes.subscribe();
    let state = (app, rx, seen, session, permit, true);
    let stream = futures_util::stream::unfold(
        state,
        move |(app, mut rx, seen, session, permit, mut first)| async move {
            loop {
                if !first {
                    tokio::select! {
                        changed = rx.changed() => changed.ok()?,
                        () = tokio::time::sleep_until(deadline) => return None,
                    }
                }
                first = false;
                let app2 = app.clone();
                let which = session.clone();
                let version = tokio::task::spawn_blocking(move || app2.version(which.as_deref()))
                    .await
                    .ok()?;
                if version != seen {
                    let event = Event::default().event("changed").data(version.clone());
                    return Some((
                        Ok::<_, Infallible>(event),
                        (app, rx, version, session, permit, false),
                    ));
                }
            }
        },
    );
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}
