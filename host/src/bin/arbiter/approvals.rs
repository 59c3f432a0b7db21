//! `arbiter approvals`: list, show, approve and reject the approvals step-ups wait for,
//! on a running `arbiter serve` or `arbiter gateway` (see `docs/approvals.md`).
//!
//! The token is read from an environment variable, never from the command line (which
//! other users of the machine can see in the process list).

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `arbiter approvals`.
#[derive(Debug, clap::Args)]
pub struct ApprovalsArgs {
    #[command(subcommand)]
    command: ApprovalsCommand,
    /// The server's base URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8480")]
    server: String,
    /// The environment variable holding the bearer token: an approver group's token, or
    /// the admin token (which reads but does not answer).
    #[arg(long, global = true, default_value = "ARBITER_APPROVER_TOKEN")]
    token_env: String,
    /// PEM file of the CA that signed the server's certificate (https).
    #[arg(long, global = true)]
    ca_cert: Option<PathBuf>,
    /// PEM file with a client certificate and its key, for an approver who authenticates
    /// with an X.509-SVID.
    #[arg(long, global = true)]
    identity: Option<PathBuf>,
    /// Print the server's JSON instead of a summary.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum ApprovalsCommand {
    /// The approvals held, newest first.
    List {
        /// Only these: pending, approved, rejected, consumed, expired.
        #[arg(long)]
        status: Option<String>,
        /// Only this task's.
        #[arg(long)]
        task: Option<String>,
    },
    /// One approval: the call it is for, who asked and why, who answered.
    Show {
        /// The approval id (`apr-…`).
        id: String,
    },
    /// Approve: the agent's identical retry is then allowed, once.
    Approve(Answer),
    /// Reject: the identical call is then denied.
    Reject(Answer),
}

#[derive(Debug, clap::Args)]
struct Answer {
    /// The approval id (`apr-…`).
    id: String,
    /// Who is answering (required with a group token; a verified approver is their SVID).
    #[arg(long)]
    approver: Option<String>,
    /// Why, for the record.
    #[arg(long)]
    note: Option<String>,
}

/// Runs the subcommand; exit status 0 on success, 1 with the server's error otherwise.
pub fn run(args: &ApprovalsArgs) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run_async(args))
}

async fn run_async(args: &ApprovalsArgs) -> Result<u8> {
    let client = client(args)?;
    let base = args.server.trim_end_matches('/');
    let token = std::env::var(&args.token_env).ok();
    let (method, path, body) = match &args.command {
        ApprovalsCommand::List { status, task } => {
            let mut query: Vec<(&str, &str)> = Vec::new();
            if let Some(status) = status {
                query.push(("status", status));
            }
            if let Some(task) = task {
                query.push(("task", task));
            }
            let query = if query.is_empty() {
                String::new()
            } else {
                let pairs: Vec<String> = query
                    .iter()
                    .map(|(k, v)| format!("{k}={}", percent(v)))
                    .collect();
                format!("?{}", pairs.join("&"))
            };
            ("GET", format!("/v1/approvals{query}"), None)
        }
        ApprovalsCommand::Show { id } => ("GET", format!("/v1/approvals/{}", percent(id)), None),
        ApprovalsCommand::Approve(answer) | ApprovalsCommand::Reject(answer) => {
            let verb = if matches!(args.command, ApprovalsCommand::Approve(_)) {
                "approve"
            } else {
                "reject"
            };
            let mut body = serde_json::Map::new();
            if let Some(approver) = &answer.approver {
                body.insert("approver".to_owned(), json!(approver));
            }
            if let Some(note) = &answer.note {
                body.insert("note".to_owned(), json!(note));
            }
            (
                "POST",
                format!("/v1/approvals/{}/{verb}", percent(&answer.id)),
                Some(Value::Object(body)),
            )
        }
    };
    let url = format!("{base}{path}");
    let mut request = if method == "GET" {
        client.get(&url)
    } else {
        client.post(&url).json(&body.unwrap_or_else(|| json!({})))
    };
    if let Some(token) = &token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach `{url}`"))?;
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .with_context(|| format!("`{url}` answered HTTP {status} without JSON"))?;
    if !status.is_success() {
        let message = answer
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| answer.to_string());
        bail!("HTTP {status}: {message}");
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
        return Ok(super::EXIT_ALLOW);
    }
    match &args.command {
        ApprovalsCommand::List { .. } => {
            let approvals = answer
                .get("approvals")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if approvals.is_empty() {
                println!("no approvals");
            }
            for a in &approvals {
                println!("{}", summary(a));
            }
        }
        ApprovalsCommand::Show { .. } => println!("{}", serde_json::to_string_pretty(&answer)?),
        ApprovalsCommand::Approve(_) | ApprovalsCommand::Reject(_) => {
            println!("{}", summary(&answer));
        }
    }
    Ok(super::EXIT_ALLOW)
}

/// One line: id, status, agent, task, tool, groups.
fn summary(a: &Value) -> String {
    let text = |pointer: &str| {
        a.pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("-")
            .to_owned()
    };
    let groups: Vec<String> = a
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    format!(
        "{id}  {status:<8}  agent {agent}  task {task}  tool {server}/{tool}  groups {groups}",
        id = text("/id"),
        status = text("/status"),
        agent = text("/binding/agent"),
        task = text("/binding/task"),
        server = text("/binding/server"),
        tool = text("/binding/tool"),
        groups = if groups.is_empty() {
            "(any)".to_owned()
        } else {
            groups.join(",")
        },
    )
}

/// Percent-encodes a path segment or query value (ids and statuses are plain, but the
/// user types them).
fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn client(args: &ApprovalsArgs) -> Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(30));
    if let Some(path) = &args.ca_cert {
        let pem =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let certificate = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("`{}` is not a PEM certificate", path.display()))?;
        builder = builder.add_root_certificate(certificate);
    }
    if let Some(path) = &args.identity {
        let pem =
            std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))?;
        let identity = reqwest::Identity::from_pem(&pem).with_context(|| {
            format!(
                "`{}` does not hold a PEM certificate and private key",
                path.display()
            )
        })?;
        builder = builder.identity(identity);
    }
    builder.build().context("cannot build the HTTP client")
}
