//! Task routes: create (single and batch), get, cancel, list.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::error::ApiError;
use super::AppState;
use crate::error::Error;
use crate::store::ListQuery;
use crate::task::{CancelOutcome, CreateOutcome, Destination, Task, TaskState};
use crate::validate::{parse_new_task, parse_new_task_value};

async fn read_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.scheduler.limits().max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::too_large(format!("request body exceeds the limit of {limit} bytes"))
    })
}

fn scheduled(id: &str) -> Value {
    json!({ "message": format!("Task {id} scheduled successfully") })
}

/// `POST /tasks`: 201 created, 200 identical duplicate, 409 different body.
/// The request's W3C `traceparent`: the created task's deliveries continue
/// its trace.
fn trace_parent(headers: &HeaderMap) -> Option<String> {
    let v = headers.get("traceparent")?.to_str().ok()?;
    Some(v.to_string())
}

pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&state, body).await?;
    let mut req = parse_new_task(&bytes)?;
    req.trace_parent = trace_parent(&headers);
    let id = req.id.clone().unwrap_or_default();
    match state.scheduler.create_task(req).await? {
        CreateOutcome::Created => Ok((StatusCode::CREATED, Json(scheduled(&id))).into_response()),
        CreateOutcome::Duplicate => Ok((StatusCode::OK, Json(scheduled(&id))).into_response()),
        CreateOutcome::Conflict => Err(Error::Conflict { id }.into()),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum BatchBody {
    List(Vec<Value>),
    Wrapped { tasks: Vec<Value> },
}

/// `POST /tasks/batch`: a JSON array of tasks (or `{"tasks": [...]}`); 200
/// with one result per task carrying the status a single create would give.
pub(crate) async fn create_batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(&state, body).await?;
    let batch: BatchBody = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::invalid_body(format!(
            "expected a JSON array of tasks or {{\"tasks\": [...]}}: {e}"
        ))
    })?;
    let items = match batch {
        BatchBody::List(v) | BatchBody::Wrapped { tasks: v } => v,
    };
    let max = state.scheduler.limits().max_batch;
    if items.len() > max {
        return Err(ApiError::validation(format!(
            "tasks: at most {max} tasks per batch, got {}",
            items.len()
        )));
    }
    let mut ids = Vec::with_capacity(items.len());
    let mut parsed = Vec::with_capacity(items.len());
    let mut errors: Vec<Option<ApiError>> = Vec::with_capacity(items.len());
    for (i, v) in items.iter().enumerate() {
        ids.push(
            v.get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        );
        match parse_new_task_value(v) {
            Ok(mut t) => {
                t.trace_parent = trace_parent(&headers);
                parsed.push(t);
                errors.push(None);
            }
            Err(e) => {
                let mut e = ApiError::from(e);
                e.message = format!("tasks[{i}].{}", e.message);
                errors.push(Some(e));
            }
        }
    }
    let mut outcomes = state.scheduler.create_tasks(parsed).await?.into_iter();
    let mut created = 0;
    let results: Vec<Value> = errors
        .into_iter()
        .zip(ids)
        .map(|(err, id)| {
            let r = match err {
                Some(e) => Err(e),
                None => outcomes
                    .next()
                    .expect("one outcome per parsed task")
                    .map_err(ApiError::from),
            };
            match r {
                Ok(CreateOutcome::Created) => {
                    created += 1;
                    json!({"id": id, "status": 201, "message": format!("Task {id} scheduled successfully")})
                }
                Ok(CreateOutcome::Duplicate) => {
                    json!({"id": id, "status": 200, "message": format!("Task {id} scheduled successfully")})
                }
                Ok(CreateOutcome::Conflict) => json!({"id": id, "status": 409, "code": "CONFLICT",
                    "error": format!("task {id} already exists with a different body")}),
                Err(e) => json!({"id": id, "status": e.status.as_u16(), "code": e.code, "error": e.message}),
            }
        })
        .collect();
    Ok(Json(json!({ "created": created, "results": results })).into_response())
}

/// A task as the API shows it. Times are Unix epoch milliseconds.
#[derive(Debug, Serialize)]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Lifecycle state.
    pub state: TaskState,
    /// Failed deliveries so far (the in-flight one included while delivering).
    pub attempts: u32,
    /// Retries allowed after the first delivery.
    pub max_retries: u32,
    /// Next due time, while scheduled.
    pub next_due_ms: Option<u64>,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// Creation time.
    pub created_at_ms: u64,
    /// Last state change.
    pub updated_at_ms: u64,
    /// Producing system.
    pub source: String,
    /// Tenant.
    pub client_id: String,
    /// Priority flag.
    pub is_priority: bool,
    /// `kafka` or `http`.
    pub destination_type: &'static str,
    /// Target.
    pub destination: Destination,
    /// Dead-letter target.
    pub dead_destination: Option<Destination>,
    /// Size of `message_data` in bytes.
    pub message_bytes: usize,
}

impl From<Task> for TaskView {
    fn from(t: Task) -> Self {
        TaskView {
            id: t.spec.id,
            state: t.state,
            attempts: t.attempts,
            max_retries: t.spec.max_retries,
            next_due_ms: t.next_due_ms.filter(|_| t.state == TaskState::Scheduled),
            last_error: t.last_error,
            created_at_ms: t.created_at_ms,
            updated_at_ms: t.updated_at_ms,
            source: t.spec.source,
            client_id: t.spec.client_id,
            is_priority: t.spec.is_priority,
            destination_type: t.spec.destination_type.as_str(),
            destination: t.spec.destination,
            dead_destination: t.spec.dead_destination,
            message_bytes: t.spec.message_data.len(),
        }
    }
}

/// `GET /tasks/{id}`: 200 or 404.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    match state.scheduler.get(&id).await? {
        Some(t) => Ok(Json(t.into())),
        None => Err(ApiError::not_found(format!("task {id} not found"))),
    }
}

/// `DELETE /tasks/{id}`: 200 cancelled, 404 unknown, 409 already finished.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    match state.scheduler.cancel(&id).await? {
        CancelOutcome::Cancelled => Ok(Json(json!({"message": format!("Task {id} cancelled")}))),
        CancelOutcome::NotFound => Err(ApiError::not_found(format!("task {id} not found"))),
        CancelOutcome::AlreadyFinal(s) => Err(ApiError::conflict(format!(
            "task {id} is already {}",
            s.as_str()
        ))),
    }
}

/// Query of `GET /tasks`.
#[derive(Debug, Deserialize)]
pub(crate) struct ListParams {
    state: Option<String>,
    client_id: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// `GET /tasks?state=&client_id=&limit=&cursor=`: a page and `next_cursor`.
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let st = match p.state.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(TaskState::parse(s).ok_or_else(|| {
            ApiError::validation(format!(
                "state: must be one of scheduled, delivering, delivered, dead, cancelled; got {s:?}"
            ))
        })?),
    };
    let limit = match p.limit.as_deref() {
        None | Some("") => 100,
        Some(l) => match l.parse::<usize>() {
            Ok(n @ 1..=1000) => n,
            _ => {
                return Err(ApiError::validation(format!(
                    "limit: must be 1-1000, got {l:?}"
                )))
            }
        },
    };
    let page = state
        .scheduler
        .list(&ListQuery {
            state: st,
            client_id: p.client_id.filter(|c| !c.is_empty()),
            cursor: p.cursor.filter(|c| !c.is_empty()),
            limit,
        })
        .await?;
    let tasks: Vec<TaskView> = page.tasks.into_iter().map(Into::into).collect();
    Ok(Json(
        json!({"tasks": tasks, "next_cursor": page.next_cursor}),
    ))
}
