// The `contract` conformance policy, JavaScript twin (QuickJS via componentize-qjs).
// The rules are specified in plugins/contract/README.md; this file must agree with the
// Rust reference on every case in tests/conformance/.
//
// WIT mapping (componentize-qjs): records are camelCase objects, `option<T>` is the
// value or null, enums are their case name ("step-up"), u64 is a Number (Unix ms fit
// in 2^53), list<tuple<..>> is an array of arrays, and a top-level `result<_, string>`
// is "return normally" or "throw the message".
import host from "arbiter:policy/host@0.1.0";

const KEYS = ["blocked", "ignored", "sensitive_tools", "egress", "secret_keys"];

export function describe() {
  return {
    name: "contract",
    version: "0.1.0",
    kind: "conformance",
    description:
      "exercises the whole policy contract; the same rules in Rust, JavaScript, Python and C",
  };
}

function isObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

// Returns the first problem with the settings text, or null.
function check(text) {
  let settings;
  try {
    settings = JSON.parse(text);
  } catch (e) {
    return "expected a JSON object";
  }
  if (!isObject(settings)) return "expected a JSON object";
  for (const [key, value] of Object.entries(settings)) {
    if (!KEYS.includes(key)) return `unknown setting \`${key}\``;
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
      return `setting \`${key}\` must be a list of strings`;
    }
  }
  return null;
}

export function validate(settings) {
  const problem = check(settings);
  if (problem !== null) throw `invalid settings: ${problem}`;
}

// RFC 6901 escaping of one reference token.
function pointer(key) {
  return "/" + key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function decide(settings, action, redacts) {
  const list = (key) => settings[key] ?? [];
  const tool = `${action.tool.server}/${action.tool.name}`;
  const now = action.time;
  const verdict = (effect, reason, obligations = []) => ({ effect, reason, obligations, labels: [] });
  if (list("blocked").includes(tool)) return ["blocked", verdict("deny", `\`${tool}\` is blocked`)];
  if (list("ignored").includes(tool)) {
    return ["ignored", verdict("abstain", `\`${tool}\` is not governed by this policy`)];
  }
  const task = action.task;
  if (task !== null) {
    if (now < task.startedAt) {
      return ["task-not-started", verdict("deny", `task \`${task.id}\` starts at ${task.startedAt}, after ${now}`)];
    }
    if (task.expiresAt !== null && task.expiresAt <= now) {
      return ["task-expired", verdict("deny", `task \`${task.id}\` (intent \`${task.intent}\`) expired at ${task.expiresAt}`)];
    }
  }
  const credential = action.credential;
  if (credential !== null) {
    if (credential.expiresAt !== null && credential.expiresAt <= now) {
      return ["credential-expired", verdict("deny", `credential expired at ${credential.expiresAt}`)];
    }
    if (credential.audience !== null && credential.audience !== action.tool.server) {
      return ["audience", verdict("deny", `credential audience \`${credential.audience}\` does not match server \`${action.tool.server}\``)];
    }
    const last = action.delegation[action.delegation.length - 1];
    if (last !== undefined) {
      const scope = credential.scopes.find((s) => !last.scopes.includes(s));
      if (scope !== undefined) {
        return ["delegation", verdict("deny", `scope \`${scope}\` was not delegated by ${last.kind} \`${last.id}\``)];
      }
    }
  }
  if (list("egress").includes(tool)) {
    const h = host.history().find((entry) => entry.labels.includes("secret"));
    if (h !== undefined) {
      return ["exfiltration", verdict("deny",
        `\`${tool}\` sends data out after \`${h.requestId}\` (\`${h.tool.server}/${h.tool.name}\`, ${h.effect}) touched a secret at ${h.time}`,
        [{ kind: "notify", detail: "security" }])];
    }
  }
  const env = action.environment.find(([key]) => key === "env");
  if (env !== undefined && env[1] === "prod" && list("sensitive_tools").includes(tool)) {
    return ["sensitive-in-prod", verdict("step-up", `\`${tool}\` is sensitive in prod`,
      [{ kind: "require-approval", detail: "security" }, ...redacts])];
  }
  if (action.agent.attestation === "none") {
    return ["unattested", verdict("step-up", `agent \`${action.agent.id}\` is not attested`,
      [{ kind: "require-approval", detail: "identity" }, ...redacts])];
  }
  const resource = action.resource === null ? "-" : action.resource.id;
  const obligations = [...redacts];
  if (credential !== null && credential.expiresAt !== null) {
    obligations.push({ kind: "max-ttl", detail: String(Math.floor((credential.expiresAt - now) / 1000)) });
  }
  const agent = action.agent;
  return ["default", verdict("allow",
    `\`${action.requestId}\`: \`${agent.id}\` (${agent.attestation}, ${agent.claims.length} claims) may call \`${tool}\` on \`${resource}\``,
    obligations)];
}

// The settings, parsed on the first evaluation: an instance's settings never change
// (the Rust SDK caches them the same way), and parsing them costs more than the rules.
let cached = null;

function loadSettings() {
  if (cached === null) {
    const text = host.settings();
    const problem = check(text);
    cached = problem === null ? { settings: JSON.parse(text) } : { problem };
  }
  return cached;
}

export function evaluate(action) {
  const { settings, problem } = loadSettings();
  if (problem !== undefined) {
    return { effect: "deny", reason: `invalid settings: ${problem}`, obligations: [], labels: [] };
  }
  const redacts = [];
  const args = JSON.parse(action.arguments);
  if (isObject(args)) {
    for (const key of settings.secret_keys ?? []) {
      const detail = pointer(key);
      if (Object.hasOwn(args, key) && !redacts.some((o) => o.detail === detail)) {
        redacts.push({ kind: "redact", detail });
      }
    }
  }
  const [rule, verdict] = decide(settings, action, redacts);
  if (redacts.length > 0 && verdict.effect !== "abstain") verdict.labels.push("secret");
  const level = verdict.effect === "allow" || verdict.effect === "abstain" ? "info" : "warn";
  host.log(level, `${action.requestId}: ${verdict.effect} by rule ${rule}`);
  return verdict;
}
