"""The `contract` conformance policy, Python twin (CPython via componentize-py).

The rules are specified in plugins/contract/README.md; this module must agree with the
Rust reference on every case in tests/conformance/. componentize-py generates the
`wit_world` package from wit/policy-0.1.0 at build time: records are dataclasses with
snake_case fields, `option<T>` is the value or None, enums are `Enum` members, u64 is an
int, and a `result<_, string>` error is raised as `componentize_py_types.Err(message)`.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import host
from wit_world.imports.types import Effect, LogLevel, Obligation, PluginInfo, Verdict

KEYS = ("blocked", "ignored", "sensitive_tools", "egress", "secret_keys")

EFFECT_WORDS = {
    Effect.ALLOW: "allow",
    Effect.DENY: "deny",
    Effect.STEP_UP: "step-up",
    Effect.ABSTAIN: "abstain",
}


def check(text):
    """Returns the first problem with the settings text, or None."""
    try:
        settings = json.loads(text)
    except ValueError:
        return "expected a JSON object"
    if not isinstance(settings, dict):
        return "expected a JSON object"
    for key, value in settings.items():
        if key not in KEYS:
            return f"unknown setting `{key}`"
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return f"setting `{key}` must be a list of strings"
    return None


def pointer(key):
    """RFC 6901 escaping of one reference token."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


def verdict(effect, reason, obligations=None):
    return Verdict(effect, reason, obligations or [], [])


def decide(settings, action, redacts):
    def listed(key, value):
        return value in settings.get(key, [])

    tool = f"{action.tool.server}/{action.tool.name}"
    now = action.time
    if listed("blocked", tool):
        return "blocked", verdict(Effect.DENY, f"`{tool}` is blocked")
    if listed("ignored", tool):
        return "ignored", verdict(Effect.ABSTAIN, f"`{tool}` is not governed by this policy")
    task = action.task
    if task is not None:
        if now < task.started_at:
            return "task-not-started", verdict(
                Effect.DENY, f"task `{task.id}` starts at {task.started_at}, after {now}"
            )
        if task.expires_at is not None and task.expires_at <= now:
            return "task-expired", verdict(
                Effect.DENY,
                f"task `{task.id}` (intent `{task.intent}`) expired at {task.expires_at}",
            )
    credential = action.credential
    if credential is not None:
        if credential.expires_at is not None and credential.expires_at <= now:
            return "credential-expired", verdict(
                Effect.DENY, f"credential expired at {credential.expires_at}"
            )
        if credential.audience is not None and credential.audience != action.tool.server:
            return "audience", verdict(
                Effect.DENY,
                f"credential audience `{credential.audience}` does not match server `{action.tool.server}`",
            )
        if action.delegation:
            last = action.delegation[-1]
            for scope in credential.scopes:
                if scope not in last.scopes:
                    return "delegation", verdict(
                        Effect.DENY, f"scope `{scope}` was not delegated by {last.kind} `{last.id}`"
                    )
    if listed("egress", tool):
        for h in host.history():
            if "secret" in h.labels:
                return "exfiltration", verdict(
                    Effect.DENY,
                    f"`{tool}` sends data out after `{h.request_id}` "
                    f"(`{h.tool.server}/{h.tool.name}`, {EFFECT_WORDS[h.effect]}) "
                    f"touched a secret at {h.time}",
                    [Obligation("notify", "security")],
                )
    env = dict(action.environment).get("env")
    if env == "prod" and listed("sensitive_tools", tool):
        return "sensitive-in-prod", verdict(
            Effect.STEP_UP,
            f"`{tool}` is sensitive in prod",
            [Obligation("require-approval", "security"), *redacts],
        )
    if action.agent.attestation == "none":
        return "unattested", verdict(
            Effect.STEP_UP,
            f"agent `{action.agent.id}` is not attested",
            [Obligation("require-approval", "identity"), *redacts],
        )
    resource = "-" if action.resource is None else action.resource.id
    obligations = list(redacts)
    if credential is not None and credential.expires_at is not None:
        obligations.append(Obligation("max-ttl", str((credential.expires_at - now) // 1000)))
    agent = action.agent
    return "default", verdict(
        Effect.ALLOW,
        f"`{action.request_id}`: `{agent.id}` ({agent.attestation}, {len(agent.claims)} claims) "
        f"may call `{tool}` on `{resource}`",
        obligations,
    )


_cached = None


def load_settings():
    """The settings and None, or None and the problem; parsed on the first evaluation.

    An instance's settings never change (the Rust SDK caches them the same way), and
    parsing them costs more than the rules.
    """
    global _cached
    if _cached is None:
        text = host.settings()
        problem = check(text)
        _cached = (None, problem) if problem is not None else (json.loads(text), None)
    return _cached


class WitWorld(wit_world.WitWorld):
    def describe(self):
        return PluginInfo(
            "contract",
            "0.1.0",
            "conformance",
            "exercises the whole policy contract; the same rules in Rust, JavaScript, Python and C",
        )

    def validate(self, settings):
        problem = check(settings)
        if problem is not None:
            raise Err(f"invalid settings: {problem}")

    def evaluate(self, action):
        settings, problem = load_settings()
        if problem is not None:
            return verdict(Effect.DENY, f"invalid settings: {problem}")
        redacts = []
        arguments = json.loads(action.arguments)
        if isinstance(arguments, dict):
            for key in settings.get("secret_keys", []):
                redact = Obligation("redact", pointer(key))
                if key in arguments and redact not in redacts:
                    redacts.append(redact)
        rule, result = decide(settings, action, redacts)
        if redacts and result.effect != Effect.ABSTAIN:
            result.labels.append("secret")
        word = EFFECT_WORDS[result.effect]
        level = LogLevel.INFO if result.effect in (Effect.ALLOW, Effect.ABSTAIN) else LogLevel.WARN
        host.log(level, f"{action.request_id}: {word} by rule {rule}")
        return result
