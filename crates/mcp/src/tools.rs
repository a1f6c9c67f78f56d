//! The tools and resources: each tool takes the REST route's body type (its schema generated
//! from that type, see [`crate::schema`]) plus, where the route has one, the id from its path,
//! and calls the same core service the route calls.

use std::time::Duration;

use base64::Engine as _;
use opslens_core::capture::CaptureFailure;
use opslens_core::CoreError;
use opslens_domain::{
    AnalysisState, AnalyzeRequest, CaptureError, CaptureTarget, IncidentFilter, NewAction,
    NewEvidence, NewHypothesis, NewIncident, NewTimelineEvent, Region, WindowSelector,
};
use rmcp::model::{
    CallToolResult, ContentBlock, JsonObject, ReadResourceResult, Resource, ResourceContents,
    ResourceTemplate, Tool, ToolAnnotations,
};
use rmcp::ErrorData;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::schema;
use crate::OpsLensMcp;

/// Arguments of `search`: the REST route's query, as a body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// Words to find over incidents and evidence (all must match; prefixes match); not blank.
    #[schema(min_length = 1)]
    pub q: String,
    /// Most hits to return, 1 to 200 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// Arguments of `capture_screen`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureArgs {
    /// Must be `true`: the user agreed to have their screen captured now.
    pub confirm: bool,
    /// Incident to attach to; default: the open incident changed most recently, else a new
    /// "Untriaged capture" incident.
    #[serde(default)]
    pub incident_id: Option<i64>,
    /// One window instead of the monitor under the pointer: its id (number) or a part of its
    /// title (string).
    #[serde(default)]
    pub window: Option<WindowSelector>,
    /// A rectangle in screen pixels, on one monitor, instead of the whole monitor.
    #[serde(default)]
    pub region: Option<Region>,
}

/// Arguments of `upload_image`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadArgs {
    /// The image file (PNG, JPEG or WebP, at most 25 MiB), base64-encoded.
    #[schema(min_length = 1)]
    pub data_base64: String,
    /// The file name it had, shown as its title.
    #[serde(default)]
    pub filename: Option<String>,
}

/// Arguments of `ask_screenshot`, beside the REST body's `question`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AskArgs {
    /// A question about the screenshot ("what happened at 14:05?"); without one the full
    /// analysis runs again and replaces the findings.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub question: Option<String>,
    /// Seconds to wait for the answer (0 to 120, default 30); a job still running then is
    /// returned with its id, to read later with `get_analysis_job`.
    #[serde(default)]
    pub wait_seconds: Option<u64>,
}

/// Longest `ask_screenshot` waits, so a client's request timeout is not hit first.
const MAX_WAIT_S: u64 = 120;

fn tool(name: &'static str, description: &'static str, schema: JsonObject, read: bool) -> Tool {
    Tool::new(name, description, schema).with_annotations(
        ToolAnnotations::default()
            .read_only(read)
            .destructive(false)
            .open_world(false),
    )
}

fn id_only(name: &str, what: &str) -> JsonObject {
    let mut o = JsonObject::new();
    o.insert("type".into(), "object".into());
    schema::with_id(o, name, what)
}

/// Every tool with its schema.
pub fn list() -> Vec<Tool> {
    let inc = "The incident's id";
    vec![
        tool("list_incidents", "List incidents, newest first, filtered like GET /api/v1/incidents (status, severity, full-text q, open, limit, offset).",
            schema::of_params::<IncidentFilter>(), true),
        tool("search", "Full-text search over incidents and evidence (logs, notes, screenshot findings).",
            schema::of::<SearchArgs>(), true),
        tool("get_incident", "An incident with its timeline, evidence (screenshots with what the local model found in them), hypotheses and action items.",
            id_only("incident_id", inc), true),
        tool("create_incident", "Open a new incident.", schema::of::<NewIncident>(), false),
        tool("add_note", "Add a note (or an observation) to an incident's timeline.",
            schema::with_id(schema::of::<NewTimelineEvent>(), "incident_id", inc), false),
        tool("add_evidence", "Attach text evidence to an incident: a log excerpt, metric, deployment, alert or note.",
            schema::with_id(schema::of::<NewEvidence>(), "incident_id", inc), false),
        tool("add_hypothesis", "Propose a hypothesis on the incident's board.",
            schema::with_id(schema::of::<NewHypothesis>(), "incident_id", inc), false),
        tool("add_action", "Add an action item to an incident.",
            schema::with_id(schema::of::<NewAction>(), "incident_id", inc), false),
        tool("capture_screen", "Capture the user's screen (the monitor under the pointer, a window or a region) as screenshot evidence; its analysis is queued. Needs confirm: true, and a server with a display.",
            schema::of::<CaptureArgs>(), false),
        tool("upload_image", "Attach an image (base64) to an incident as screenshot evidence; its analysis by the local model is queued.",
            schema::with_id(schema::of::<UploadArgs>(), "incident_id", inc), false),
        tool("get_screenshot", "A screenshot evidence's image and what the local model found in it.",
            id_only("evidence_id", "The screenshot evidence's id"), true),
        tool("ask_screenshot", "Ask the local vision model a question about a screenshot (or re-run its analysis). Waits up to wait_seconds for the answer, else returns the job to poll with get_analysis_job.",
            schema::with_id(schema::of::<AskArgs>(), "evidence_id", "The screenshot evidence's id"), false),
        tool("get_analysis_job", "An analysis job: its state and, for a question, the answer.",
            id_only("job_id", "The job's id"), true),
        tool("get_postmortem", "The incident's postmortem (the pre-filled template while nothing was saved) as Markdown, with the document's JSON.",
            id_only("incident_id", inc), true),
    ]
}

/// A tool's failure, as the REST API would word it; the agent reads it and can correct itself.
struct Failure {
    code: &'static str,
    message: String,
}

impl From<CoreError> for Failure {
    fn from(e: CoreError) -> Self {
        let code = match &e {
            CoreError::Invalid(_) => "invalid",
            CoreError::NotFound(_) => "not_found",
            CoreError::Conflict(_) => "conflict",
            CoreError::UnsupportedMedia(_) => "unsupported_media_type",
            CoreError::TooLarge(_) => "payload_too_large",
            CoreError::Unauthorized(_) => "unauthorized",
            CoreError::NotConfigured(_) => "not_configured",
            CoreError::Upstream(_) => "upstream",
            CoreError::InsufficientStorage(_) => "insufficient_storage",
            CoreError::Busy(_) => "busy",
            _ => "internal",
        };
        let message = match code {
            "internal" => {
                tracing::error!(error = %e, "MCP tool failed");
                "internal error (see the OpsLens log)".to_string()
            }
            _ => e.to_string(),
        };
        Failure { code, message }
    }
}

fn fail(code: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

/// The arguments as `T`, refusing unknown or ill-typed fields like the REST route does.
fn parse<T: DeserializeOwned>(args: JsonObject) -> Result<T, Failure> {
    serde_json::from_value(Value::Object(args))
        .map_err(|e| fail("invalid_arguments", e.to_string()))
}

/// Takes the id the REST route has in its path out of the arguments.
fn take_id(args: &mut JsonObject, name: &str) -> Result<i64, Failure> {
    match args.remove(name) {
        Some(v) => v
            .as_i64()
            .ok_or_else(|| fail("invalid_arguments", format!("`{name}` must be an integer"))),
        None => Err(fail("invalid_arguments", format!("missing field `{name}`"))),
    }
}

fn as_json(v: &impl Serialize) -> CallToolResult {
    let text = serde_json::to_string_pretty(v).unwrap_or_else(|e| e.to_string());
    CallToolResult::success(vec![ContentBlock::text(text)])
}

/// Runs one tool; a failure becomes a tool error the agent can read, an unknown tool a protocol
/// error.
pub async fn call(
    mcp: &OpsLensMcp,
    name: &str,
    args: JsonObject,
) -> Result<CallToolResult, ErrorData> {
    if !mcp.tools.iter().any(|t| t.name == name) {
        return Err(ErrorData::invalid_params(
            format!("unknown tool `{name}`"),
            None,
        ));
    }
    match run(mcp, name, args).await {
        Ok(r) => Ok(r),
        Err(f) => {
            let body = json!({"error": {"code": f.code, "message": f.message}});
            Ok(CallToolResult::error(vec![ContentBlock::text(
                body.to_string(),
            )]))
        }
    }
}

async fn run(
    mcp: &OpsLensMcp,
    name: &str,
    mut args: JsonObject,
) -> Result<CallToolResult, Failure> {
    let s = &mcp.services;
    Ok(match name {
        "list_incidents" => {
            let filter: IncidentFilter = parse(args)?;
            as_json(&s.incidents.list(filter).await?)
        }
        "search" => {
            let a: SearchArgs = parse(args)?;
            if a.q.trim().is_empty() {
                return Err(fail("invalid_arguments", "`q` must not be blank"));
            }
            let found = s
                .incidents
                .search(opslens_core::search::SearchRequest {
                    q: a.q.clone(),
                    kinds: Vec::new(),
                    status: None,
                    severity: None,
                    from: None,
                    to: None,
                    limit: a.limit.unwrap_or(20),
                })
                .await?;
            as_json(&found)
        }
        "get_incident" => {
            let id = take_id(&mut args, "incident_id")?;
            parse::<Empty>(args)?;
            as_json(&s.incidents.export(id).await?)
        }
        "create_incident" => as_json(&s.incidents.create(parse(args)?).await?),
        "add_note" => {
            let id = take_id(&mut args, "incident_id")?;
            as_json(&s.incidents.add_timeline_event(id, parse(args)?).await?)
        }
        "add_evidence" => {
            let id = take_id(&mut args, "incident_id")?;
            as_json(&s.evidence.add_text(id, parse(args)?).await?)
        }
        "add_hypothesis" => {
            let id = take_id(&mut args, "incident_id")?;
            as_json(&s.work.add_hypothesis(id, parse(args)?).await?)
        }
        "add_action" => {
            let id = take_id(&mut args, "incident_id")?;
            as_json(&s.work.add_action(id, parse(args)?).await?)
        }
        "capture_screen" => capture(mcp, parse(args)?).await?,
        "upload_image" => {
            let id = take_id(&mut args, "incident_id")?;
            let a: UploadArgs = parse(args)?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(a.data_base64.trim())
                .map_err(|e| {
                    fail(
                        "invalid_arguments",
                        format!("`data_base64` is not base64: {e}"),
                    )
                })?;
            let ev = s
                .evidence
                .add_screenshot(id, bytes, a.filename, "mcp")
                .await?;
            as_json(&ev)
        }
        "get_screenshot" => {
            let id = take_id(&mut args, "evidence_id")?;
            parse::<Empty>(args)?;
            let ev = s.evidence.get(id).await?;
            if ev.image.is_none() {
                return Err(fail(
                    "not_a_screenshot",
                    format!("evidence {id} has no image"),
                ));
            }
            let (bytes, mime) = s.evidence.image(id).await?;
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            let text = serde_json::to_string_pretty(&ev).unwrap_or_default();
            CallToolResult::success(vec![
                ContentBlock::image(data, mime),
                ContentBlock::text(text),
            ])
        }
        "ask_screenshot" => {
            let id = take_id(&mut args, "evidence_id")?;
            let a: AskArgs = parse(args)?;
            let req = AnalyzeRequest {
                question: a.question,
            };
            let wait = Duration::from_secs(a.wait_seconds.unwrap_or(30).min(MAX_WAIT_S));
            let mut job = s.analysis.analyze(id, req.question).await?;
            let until = tokio::time::Instant::now() + wait;
            while !matches!(job.state, AnalysisState::Done | AnalysisState::Failed)
                && tokio::time::Instant::now() < until
            {
                tokio::time::sleep(Duration::from_millis(250)).await;
                job = s.analysis.job(job.id).await?;
            }
            as_json(&job)
        }
        "get_analysis_job" => {
            let id = take_id(&mut args, "job_id")?;
            parse::<Empty>(args)?;
            as_json(&s.analysis.job(id).await?)
        }
        "get_postmortem" => {
            let id = take_id(&mut args, "incident_id")?;
            parse::<Empty>(args)?;
            let pm = s.command.postmortem(id).await?;
            let bundle = s.command.postmortem_bundle(id).await?;
            let json = serde_json::to_string_pretty(&pm).unwrap_or_default();
            CallToolResult::success(vec![
                ContentBlock::text(bundle.to_markdown()),
                ContentBlock::text(json),
            ])
        }
        other => return Err(fail("unknown_tool", format!("unknown tool `{other}`"))),
    })
}

/// No further arguments.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Empty {}

async fn capture(mcp: &OpsLensMcp, a: CaptureArgs) -> Result<CallToolResult, Failure> {
    if !a.confirm {
        return Err(fail(
            "confirmation_required",
            "capture_screen grabs the user's screen: ask them first, then call it with confirm: true",
        ));
    }
    let target = match (a.window, a.region) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "invalid_target",
                "give `window` or `region`, not both",
            ))
        }
        (Some(w), None) => CaptureTarget::Window(w),
        (None, Some(r)) => {
            r.validate()
                .map_err(|e| fail("invalid_target", e.to_string()))?;
            CaptureTarget::Region(r)
        }
        (None, None) => CaptureTarget::Monitor,
    };
    let Some(screen) = mcp.screen.clone() else {
        return Err(fail(
            "no_display",
            "this OpsLens has no screen to capture (a headless `opslens serve`, or `opslens mcp` \
             without a running desktop app): start the desktop app, or use upload_image",
        ));
    };
    match mcp
        .services
        .evidence
        .capture(screen, a.incident_id, target)
        .await
    {
        Ok(c) => Ok(as_json(&c.evidence)),
        Err(CaptureFailure::Core(e)) => Err(e.into()),
        Err(CaptureFailure::Capture(e)) => Err(match e {
            CaptureError::NoDisplay(m) => fail("no_display", m),
            CaptureError::NotFound(m) => fail("not_found", m),
            CaptureError::InvalidTarget(m) => fail("invalid_target", m),
            other => fail("capture_failed", other.to_string()),
        }),
    }
}

const INCIDENT_URI: &str = "opslens://incidents/";
const EVIDENCE_URI: &str = "opslens://evidence/";

fn not_found(uri: &str, why: impl std::fmt::Display) -> ErrorData {
    ErrorData::resource_not_found(format!("{uri}: {why}"), None)
}

fn core(e: CoreError) -> ErrorData {
    match e {
        CoreError::NotFound(m) => ErrorData::resource_not_found(m, None),
        CoreError::Invalid(m) => ErrorData::invalid_params(m, None),
        e => {
            tracing::error!(error = %e, "MCP resource failed");
            ErrorData::internal_error(e.to_string(), None)
        }
    }
}

/// Resources: the open incidents (or the 50 latest when none is open), and the screenshots of
/// the open ones; any other through the templates.
pub async fn resources(mcp: &OpsLensMcp) -> Result<Vec<Resource>, ErrorData> {
    let s = &mcp.services;
    let open = s
        .incidents
        .list(IncidentFilter {
            open: Some(true),
            limit: Some(50),
            ..Default::default()
        })
        .await
        .map_err(core)?;
    let mut out = Vec::new();
    for inc in &open.items {
        out.push(
            Resource::new(
                format!("{INCIDENT_URI}{}", inc.id),
                format!("Incident {}: {}", inc.id, inc.title),
            )
            .with_description(
                "The incident with its timeline, evidence, hypotheses and actions (JSON)",
            )
            .with_mime_type("application/json"),
        );
        for ev in s.evidence.of_incident(inc.id).await.map_err(core)? {
            if let Some(img) = &ev.image {
                out.push(
                    Resource::new(
                        format!("{EVIDENCE_URI}{}/image", ev.id),
                        format!("Screenshot {}: {}", ev.id, ev.title),
                    )
                    .with_description(format!("Screenshot on incident {}", inc.id))
                    .with_mime_type(img.mime.clone()),
                );
            }
        }
    }
    Ok(out)
}

/// Every incident and screenshot by id.
pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{INCIDENT_URI}{{id}}"), "incident")
            .with_description(
                "An incident with its timeline, evidence, hypotheses and actions (JSON)",
            )
            .with_mime_type("application/json"),
        ResourceTemplate::new(format!("{EVIDENCE_URI}{{id}}/image"), "screenshot")
            .with_description("A screenshot evidence's image"),
        ResourceTemplate::new(format!("{EVIDENCE_URI}{{id}}"), "evidence")
            .with_description("A piece of evidence with the model's findings (JSON)")
            .with_mime_type("application/json"),
    ]
}

/// Reads `opslens://incidents/{id}`, `opslens://evidence/{id}` or
/// `opslens://evidence/{id}/image` (the image itself, base64 with its MIME type).
pub async fn read(mcp: &OpsLensMcp, uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let s = &mcp.services;
    let id = |rest: &str| -> Result<i64, ErrorData> {
        rest.parse::<i64>().map_err(|_| not_found(uri, "not an id"))
    };
    if let Some(rest) = uri.strip_prefix(INCIDENT_URI) {
        let x = s.incidents.export(id(rest)?).await.map_err(core)?;
        let text = serde_json::to_string_pretty(&x).unwrap_or_default();
        return Ok(ReadResourceResult::new(vec![ResourceContents::text(
            text, uri,
        )
        .with_mime_type("application/json")]));
    }
    if let Some(rest) = uri.strip_prefix(EVIDENCE_URI) {
        if let Some(n) = rest.strip_suffix("/image") {
            let (bytes, mime) = s.evidence.image(id(n)?).await.map_err(core)?;
            let data = base64::engine::general_purpose::STANDARD.encode(bytes);
            return Ok(ReadResourceResult::new(vec![ResourceContents::blob(
                data, uri,
            )
            .with_mime_type(mime)]));
        }
        let ev = s.evidence.get(id(rest)?).await.map_err(core)?;
        let text = serde_json::to_string_pretty(&ev).unwrap_or_default();
        return Ok(ReadResourceResult::new(vec![ResourceContents::text(
            text, uri,
        )
        .with_mime_type("application/json")]));
    }
    Err(not_found(uri, "OpsLens serves opslens://incidents/{id}, opslens://evidence/{id} and opslens://evidence/{id}/image"))
}
