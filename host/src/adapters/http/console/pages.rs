//! The console's HTML, rendered by maud (every inserted value is escaped). Pages are
//! plain server-rendered HTML; the one script (`console.js`) only reloads a page whose
//! data changed.

use super::session::{Principal, Session};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

/// A page with the console's header.
pub fn layout(title: &str, session: Option<&Session>, watch: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Arbiter console" }
                link rel="stylesheet" href="/console/assets/console.css";
            }
            body data-watch=[watch] {
                header {
                    strong { "Arbiter" }
                    @if let Some(session) = session {
                        a href="/console" { "Approvals" }
                        a href="/console/decisions" { "Decisions" }
                        a href="/console/policy" { "Policy set" }
                        a href="/console/tasks" { "Tasks" }
                        span class="who" { (session.principal.label()) }
                        form method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
                script src="/console/assets/console.js" {}
            }
        }
    }
}

/// The login form; `error` says why the last attempt failed.
pub fn login(error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        None,
        html! {
            form class="login" method="post" action="/console/login" {
                h1 { "Log in" }
                @if let Some(error) = error { p class="error" { (error) } }
                label for="token" { "Token (an approver group's, or the admin token)" }
                input id="token" name="token" type="password" autocomplete="off" required;
                label for="approver" { "Your name (approvers)" }
                input id="approver" name="approver" type="text" autocomplete="username";
                p { button type="submit" { "Log in" } }
            }
        },
    )
}

/// A status word as a badge.
pub fn badge(status: &str) -> Markup {
    html! { span class={ "status status-" (status) } { (status) } }
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// Approvals: the pending ones first, then the rest.
pub fn approvals(session: &Session, approvals: &[Value]) -> Markup {
    let pending: Vec<&Value> = approvals
        .iter()
        .filter(|a| text(a, "/status") == "pending")
        .collect();
    let others: Vec<&Value> = approvals
        .iter()
        .filter(|a| text(a, "/status") != "pending")
        .collect();
    layout(
        "Approvals",
        Some(session),
        Some("/console/approvals.json"),
        html! {
            h1 { "Pending approvals" }
            @if pending.is_empty() { p class="notice" id="no-pending" { "Nothing waits for approval." } }
            @else { (approval_table(&pending)) }
            h2 { "Answered, used and expired" }
            @if others.is_empty() { p class="notice" { "None yet." } }
            @else { (approval_table(&others)) }
        },
    )
}

fn approval_table(rows: &[&Value]) -> Markup {
    html! {
        table class="approvals" {
            thead { tr { th { "Approval" } th { "Status" } th { "Tool" } th { "Agent" } th { "Task" } th { "Intent" } th { "Needs" } } }
            tbody {
                @for a in rows {
                    tr {
                        td { a href={ "/console/approvals/" (text(a, "/id")) } { code { (text(a, "/id")) } } }
                        td { (badge(text(a, "/status"))) }
                        td { code { (text(a, "/binding/server")) "/" (text(a, "/binding/tool")) } }
                        td { (text(a, "/binding/agent")) }
                        td { (text(a, "/binding/task")) }
                        td { (text(a, "/intent")) }
                        td { @for g in a.get("groups").and_then(Value::as_array).into_iter().flatten() { code { (g.as_str().unwrap_or("")) } " " } }
                    }
                }
            }
        }
    }
}

/// One approval, with approve and reject for an approver while it is pending.
pub fn approval(session: &Session, a: &Value, notice: Option<&str>) -> Markup {
    let id = text(a, "/id");
    let status = text(a, "/status");
    let may_answer = status == "pending" && matches!(session.principal, Principal::Approver { .. });
    layout(
        id,
        Some(session),
        Some(&format!("/console/approvals/{id}/status")),
        html! {
            h1 { "Approval " code { (id) } " " span id="status" { (badge(status)) } }
            @if let Some(notice) = notice { p class="notice" { (notice) } }
            dl {
                dt { "Tool" } dd { code { (text(a, "/binding/server")) "/" (text(a, "/binding/tool")) } }
                dt { "Agent" } dd { (text(a, "/binding/agent")) " (" (text(a, "/binding/attestation")) ")" }
                dt { "Task" } dd { (text(a, "/binding/task")) }
                dt { "Intent" } dd { (text(a, "/intent")) }
                dt { "Needs" } dd { @for g in a.get("missing_groups").and_then(Value::as_array).into_iter().flatten() { code { (g.as_str().unwrap_or("")) } " " } }
                dt { "Policy generation" } dd { (a.pointer("/binding/generation").map(Value::to_string).unwrap_or_default()) }
                dt { "Arguments hash" } dd { code { (text(a, "/binding/arguments_sha256")) } }
                dt { "Asked by decision" } dd { code { (text(a, "/requested_by")) } }
                dt { "Reason" } dd { (text(a, "/reason")) }
            }
            h2 { "Arguments (as the decision log shows them)" }
            pre id="arguments" { (pretty(a.get("arguments").unwrap_or(&Value::Null))) }
            h2 { "Why a step-up" }
            table { thead { tr { th { "Plugin" } th { "Reason" } } }
                tbody { @for c in a.get("causes").and_then(Value::as_array).into_iter().flatten() {
                    tr { td { code { (text(c, "/plugin")) } } td { (text(c, "/reason")) } }
                } }
            }
            @if let Some(by) = a.get("approved_by").and_then(Value::as_array).filter(|b| !b.is_empty()) {
                h2 { "Approved by" }
                ul { @for b in by { li { (text(b, "/approver")) " (" (text(b, "/authenticated_by")) ") " (text(b, "/note")) } } }
            }
            @if let Some(r) = a.get("rejected_by") {
                h2 { "Rejected by" }
                p { (text(r, "/approver")) " (" (text(r, "/authenticated_by")) ") " (text(r, "/note")) }
            }
            @if may_answer {
                div class="actions" {
                    form class="approve" method="post" action={ "/console/approvals/" (id) "/approve" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input name="note" type="text" placeholder="note (optional)";
                        " " button id="approve" type="submit" { "Approve" }
                    }
                    form class="reject" method="post" action={ "/console/approvals/" (id) "/reject" } {
                        input type="hidden" name="csrf" value=(session.csrf);
                        input name="note" type="text" placeholder="why (optional)";
                        " " button id="reject" type="submit" { "Reject" }
                    }
                }
            } @else if status == "pending" {
                p class="notice" { "The admin token reads approvals but does not answer them: log in with an approver group's token." }
            }
        },
    )
}

/// Recent decisions, as the decision log wrote them, filtered.
pub fn decisions(
    session: &Session,
    rows: &[Value],
    effect: &str,
    task: &str,
    agent: &str,
) -> Markup {
    layout(
        "Decisions",
        Some(session),
        None,
        html! {
            h1 { "Recent decisions" }
            form class="filter" method="get" action="/console/decisions" {
                select name="effect" {
                    @for e in ["", "allow", "deny", "step-up"] {
                        option value=(e) selected[e == effect] { @if e.is_empty() { "any effect" } @else { (e) } }
                    }
                }
                input name="task" type="text" placeholder="task" value=(task);
                input name="agent" type="text" placeholder="agent" value=(agent);
                button type="submit" { "Filter" }
            }
            table class="decisions" {
                thead { tr { th { "Time" } th { "Effect" } th { "Tool" } th { "Agent" } th { "Task" } th { "Reason" } th { "Plugins: verdict, digest, signer" } } }
                tbody { @for d in rows {
                    tr {
                        td { (text(d, "/time")) }
                        td { (badge(text(d, "/effect"))) }
                        td { code { (text(d, "/action/tool/server")) "/" (text(d, "/action/tool/name")) } }
                        td { (text(d, "/action/agent/id")) }
                        td { (text(d, "/task_id")) }
                        td { (text(d, "/reason")) }
                        td { @for p in d.get("plugins").and_then(Value::as_array).into_iter().flatten() {
                            div { code { (text(p, "/name")) } ": " (text(p, "/effect")) " · " code { (text(p, "/digest").get(..19).unwrap_or("")) } " · " (text(p, "/signer")) }
                        } }
                    }
                } }
            }
        },
    )
}

/// The active policy set and the last reload attempt.
pub fn policy(session: &Session, status: &Value) -> Markup {
    layout(
        "Policy set",
        Some(session),
        None,
        html! {
            h1 { "Policy set, generation " (status.get("generation").map(Value::to_string).unwrap_or_default()) }
            p { "Digest " code { (text(status, "/policy_digest")) } }
            table class="plugins" {
                thead { tr { th { "Name" } th { "Plugin" } th { "Kind" } th { "Contract" } th { "Digest" } th { "Signer" } th { "Signature" } th { "Mode" } } }
                tbody { @for p in status.get("plugins").and_then(Value::as_array).into_iter().flatten() {
                    tr {
                        td { code { (text(p, "/name")) } }
                        td { (text(p, "/plugin")) " " (text(p, "/version")) }
                        td { (text(p, "/kind")) }
                        td { (text(p, "/contract")) }
                        td { code { (text(p, "/digest")) } }
                        td { (text(p, "/signer")) }
                        td { (text(p, "/signature")) }
                        td { (text(p, "/mode")) }
                    }
                } }
            }
            h2 { "Last reload attempt" }
            @match status.get("last") {
                Some(last) if !last.is_null() => { pre { (pretty(last)) } }
                _ => { p class="notice" { "None since start." } }
            }
        },
    )
}

/// Tasks seen in recent decisions, and the approvals of each.
pub fn tasks(session: &Session, rows: &[(String, Value)]) -> Markup {
    layout(
        "Tasks",
        Some(session),
        None,
        html! {
            h1 { "Tasks" }
            table class="tasks" {
                thead { tr { th { "Task" } th { "State" } th { "Sticky labels" } th { "History (oldest first)" } } }
                tbody { @for (id, t) in rows {
                    tr {
                        td { code { (id) } }
                        td { (badge(text(t, "/state"))) }
                        td { @for l in t.get("labels").and_then(Value::as_array).into_iter().flatten() { code { (l.as_str().unwrap_or("")) } " " } }
                        td { @for e in t.get("entries").and_then(Value::as_array).into_iter().flatten() {
                            div { code { (text(e, "/server")) "/" (text(e, "/tool")) } " " (text(e, "/effect")) }
                        } }
                    }
                } }
            }
        },
    )
}

/// An error page.
pub fn problem(session: Option<&Session>, title: &str, message: &str) -> Markup {
    layout(
        title,
        session,
        None,
        html! { h1 { (title) } p class="error" { (message) } (PreEscaped("")) },
    )
}
