// The `contract` conformance policy, C twin (Debian clang + wasi-libc, bindings generated
// from wit/policy-0.1.0 by tools/componentize-c). The rules are specified in
// plugins/contract/README.md; this file must agree with the Rust reference on every case
// in tests/conformance/.
//
// Memory: the callee owns lifted arguments (it frees them with the generated *_free
// functions); everything returned is malloc'd and freed by the generated post-return
// functions. JSON is read with jsmn (Debian `libjsmn-dev`), a header-only tokenizer.

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#define JSMN_STRICT
#include "jsmn.h"

#include "evaluator.h"

typedef evaluator_string_t str_t;

static const char *const KEYS[] = {"blocked", "ignored", "sensitive_tools", "egress",
                                   "secret_keys"};
#define NKEYS (sizeof(KEYS) / sizeof(KEYS[0]))

// ---- small helpers -------------------------------------------------------------------

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) abort();  // a trap: the host reports it and fails closed
  return p;
}

static bool str_is(const str_t *s, const char *c) {
  size_t n = strlen(c);
  return s->len == n && memcmp(s->ptr, c, n) == 0;
}

static bool str_eq(const str_t *a, const str_t *b) {
  return a->len == b->len && memcmp(a->ptr, b->ptr, a->len) == 0;
}

// Formats into a fresh malloc'd string (the host takes ownership).
static str_t fmt(const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  int n = vsnprintf(NULL, 0, format, ap);
  va_end(ap);
  if (n < 0) abort();
  char *p = xmalloc((size_t)n + 1);
  va_start(ap, format);
  vsnprintf(p, (size_t)n + 1, format, ap);
  va_end(ap);
  return (str_t){(uint8_t *)p, (size_t)n};
}

static str_t dup_c(const char *c) {
  str_t s;
  evaluator_string_dup(&s, c);
  return s;
}

// ---- JSON (jsmn tokens) --------------------------------------------------------------

typedef struct {
  const char *text;
  jsmntok_t *tok;
  int n;
} json_t;

// Tokenizes `text`; false when it is not valid JSON.
static bool json_parse(json_t *j, const uint8_t *text, size_t len) {
  jsmn_parser p;
  jsmn_init(&p);
  int n = jsmn_parse(&p, (const char *)text, len, NULL, 0);
  if (n <= 0) return false;
  j->text = (const char *)text;
  j->tok = xmalloc(sizeof(jsmntok_t) * (size_t)n);
  j->n = n;
  jsmn_init(&p);
  return jsmn_parse(&p, (const char *)text, len, j->tok, (unsigned)n) == n;
}

// Index of the token after the value at `i` (and everything nested in it).
static int json_skip(const json_t *j, int i) {
  int end = j->tok[i].end;
  int k = i + 1;
  while (k < j->n && j->tok[k].start < end) k++;
  return k;
}

static void put_utf8(char *out, size_t *o, uint32_t c) {
  if (c < 0x80) {
    out[(*o)++] = (char)c;
  } else if (c < 0x800) {
    out[(*o)++] = (char)(0xC0 | (c >> 6));
    out[(*o)++] = (char)(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out[(*o)++] = (char)(0xE0 | (c >> 12));
    out[(*o)++] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (c & 0x3F));
  } else {
    out[(*o)++] = (char)(0xF0 | (c >> 18));
    out[(*o)++] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[(*o)++] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[(*o)++] = (char)(0x80 | (c & 0x3F));
  }
}

static uint32_t hex4(const char *p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
  }
  return v;
}

// The decoded value of string token `i`, malloc'd (strict jsmn has checked the escapes).
static str_t json_string(const json_t *j, int i) {
  const char *s = j->text + j->tok[i].start;
  size_t len = (size_t)(j->tok[i].end - j->tok[i].start);
  char *out = xmalloc(len + 1);
  size_t o = 0;
  for (size_t k = 0; k < len; k++) {
    if (s[k] != '\\') {
      out[o++] = s[k];
      continue;
    }
    char e = s[++k];
    switch (e) {
      case 'b': out[o++] = '\b'; break;
      case 'f': out[o++] = '\f'; break;
      case 'n': out[o++] = '\n'; break;
      case 'r': out[o++] = '\r'; break;
      case 't': out[o++] = '\t'; break;
      case 'u': {
        uint32_t c = hex4(s + k + 1);
        k += 4;
        if (c >= 0xD800 && c < 0xDC00 && k + 6 < len && s[k + 1] == '\\' && s[k + 2] == 'u') {
          uint32_t lo = hex4(s + k + 3);
          if (lo >= 0xDC00 && lo < 0xE000) {
            c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00);
            k += 6;
          }
        }
        put_utf8(out, &o, c);
        break;
      }
      default: out[o++] = e; break;  // \" \\ \/
    }
  }
  return (str_t){(uint8_t *)out, o};
}

static bool json_string_is(const json_t *j, int i, const str_t *want) {
  if (j->tok[i].type != JSMN_STRING) return false;
  str_t s = json_string(j, i);
  bool eq = str_eq(&s, want);
  free(s.ptr);
  return eq;
}

// Index of the value of top-level key `key` in the object at token 0, or -1.
static int json_get(const json_t *j, const str_t *key) {
  if (j->n == 0 || j->tok[0].type != JSMN_OBJECT) return -1;
  int i = 1;
  for (int k = 0; k < j->tok[0].size; k++) {
    if (json_string_is(j, i, key)) return i + 1;
    i = json_skip(j, i + 1);
  }
  return -1;
}

// ---- settings ------------------------------------------------------------------------

// The first problem with the settings, as a malloc'd message, or NULL.
static char *check_settings(const json_t *j) {
  if (j->n == 0 || j->tok[0].type != JSMN_OBJECT) {
    str_t m = fmt("invalid settings: expected a JSON object");
    return (char *)m.ptr;
  }
  int i = 1;
  for (int k = 0; k < j->tok[0].size; k++) {
    str_t key = json_string(j, i);
    bool known = false;
    for (size_t q = 0; q < NKEYS; q++) known = known || str_is(&key, KEYS[q]);
    if (!known) {
      str_t m = fmt("invalid settings: unknown setting `%.*s`", (int)key.len, key.ptr);
      free(key.ptr);
      return (char *)m.ptr;
    }
    int v = i + 1;
    bool ok = j->tok[v].type == JSMN_ARRAY;
    if (ok) {
      int e = v + 1;
      for (int q = 0; q < j->tok[v].size; q++) {
        ok = ok && j->tok[e].type == JSMN_STRING;
        e = json_skip(j, e);
      }
    }
    if (!ok) {
      str_t m = fmt("invalid settings: setting `%.*s` must be a list of strings", (int)key.len,
                    key.ptr);
      free(key.ptr);
      return (char *)m.ptr;
    }
    free(key.ptr);
    i = json_skip(j, v);
  }
  return NULL;
}

// Whether `value` is in the settings list `key`.
static bool listed(const json_t *settings, const char *key, const str_t *value) {
  str_t k = {(uint8_t *)key, strlen(key)};
  int v = json_get(settings, &k);
  if (v < 0) return false;
  int e = v + 1;
  for (int q = 0; q < settings->tok[v].size; q++) {
    if (json_string_is(settings, e, value)) return true;
    e = json_skip(settings, e);
  }
  return false;
}

// ---- verdicts ------------------------------------------------------------------------

typedef arbiter_policy_types_obligation_t obligation_t;

typedef struct {
  obligation_t items[32];
  size_t len;
} obligations_t;

static void push(obligations_t *o, str_t kind, str_t detail) {
  if (o->len >= sizeof(o->items) / sizeof(o->items[0])) abort();
  o->items[o->len++] = (obligation_t){kind, detail};
}

static void push_copies(obligations_t *o, const obligations_t *from) {
  for (size_t i = 0; i < from->len; i++) {
    str_t kind, detail;
    evaluator_string_dup_n(&kind, (const char *)from->items[i].kind.ptr, from->items[i].kind.len);
    evaluator_string_dup_n(&detail, (const char *)from->items[i].detail.ptr,
                           from->items[i].detail.len);
    push(o, kind, detail);
  }
}

static void set_verdict(evaluator_verdict_t *ret, arbiter_policy_types_effect_t effect, str_t reason,
                        const obligations_t *o) {
  ret->effect = effect;
  ret->reason = reason;
  ret->obligations.len = o ? o->len : 0;
  ret->obligations.ptr = xmalloc(sizeof(obligation_t) * (o ? o->len : 0));
  if (o && o->len) memcpy(ret->obligations.ptr, o->items, sizeof(obligation_t) * o->len);
  ret->labels.len = 0;
  ret->labels.ptr = NULL;
}

static const char *effect_word(arbiter_policy_types_effect_t e) {
  switch (e) {
    case ARBITER_POLICY_TYPES_EFFECT_ALLOW: return "allow";
    case ARBITER_POLICY_TYPES_EFFECT_DENY: return "deny";
    case ARBITER_POLICY_TYPES_EFFECT_STEP_UP: return "step-up";
    default: return "abstain";
  }
}

#define S(s) (int)(s).len, (const char *)(s).ptr

// The rules of plugins/contract/README.md, in order; returns the rule name.
static const char *decide(const json_t *settings, const evaluator_action_t *a,
                          const obligations_t *redacts, evaluator_verdict_t *ret) {
  str_t tool = fmt("%.*s/%.*s", S(a->tool.server), S(a->tool.name));
  uint64_t now = a->time;
  const char *rule = NULL;
  if (listed(settings, "blocked", &tool)) {
    set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_DENY, fmt("`%.*s` is blocked", S(tool)), NULL);
    rule = "blocked";
  } else if (listed(settings, "ignored", &tool)) {
    set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_ABSTAIN,
                fmt("`%.*s` is not governed by this policy", S(tool)), NULL);
    rule = "ignored";
  }
  if (!rule && a->task.is_some) {
    const arbiter_policy_types_task_t *t = &a->task.val;
    if (now < t->started_at) {
      set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_DENY,
                  fmt("task `%.*s` starts at %" PRIu64 ", after %" PRIu64, S(t->id),
                      t->started_at, now),
                  NULL);
      rule = "task-not-started";
    } else if (t->expires_at.is_some && t->expires_at.val <= now) {
      set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_DENY,
                  fmt("task `%.*s` (intent `%.*s`) expired at %" PRIu64, S(t->id), S(t->intent),
                      t->expires_at.val),
                  NULL);
      rule = "task-expired";
    }
  }
  if (!rule && a->credential.is_some) {
    const arbiter_policy_types_credential_t *c = &a->credential.val;
    if (c->expires_at.is_some && c->expires_at.val <= now) {
      set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_DENY,
                  fmt("credential expired at %" PRIu64, c->expires_at.val), NULL);
      rule = "credential-expired";
    } else if (c->audience.is_some && !str_eq(&c->audience.val, &a->tool.server)) {
      set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_DENY,
                  fmt("credential audience `%.*s` does not match server `%.*s`",
                      S(c->audience.val), S(a->tool.server)),
                  NULL);
      rule = "audience";
    } else if (a->delegation.len > 0) {
      const arbiter_policy_types_principal_t *last = &a->delegation.ptr[a->delegation.len - 1];
      for (size_t i = 0; i < c->scopes.len && !rule; i++) {
        bool delegated = false;
        for (size_t k = 0; k < last->scopes.len; k++) {
          delegated = delegated || str_eq(&c->scopes.ptr[i], &last->scopes.ptr[k]);
        }
        if (!delegated) {
          set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_DENY,
                      fmt("scope `%.*s` was not delegated by %.*s `%.*s`", S(c->scopes.ptr[i]),
                          S(last->kind), S(last->id)),
                      NULL);
          rule = "delegation";
        }
      }
    }
  }
  if (!rule && listed(settings, "egress", &tool)) {
    // Asked for only here: most calls never pay for copying the history.
    arbiter_policy_host_list_history_entry_t history;
    arbiter_policy_host_history(&history);
    for (size_t i = 0; i < history.len && !rule; i++) {
      const arbiter_policy_types_history_entry_t *h = &history.ptr[i];
      for (size_t k = 0; k < h->labels.len && !rule; k++) {
        if (str_is(&h->labels.ptr[k], "secret")) {
          obligations_t o = {.len = 0};
          push(&o, dup_c("notify"), dup_c("security"));
          set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_DENY,
                      fmt("`%.*s` sends data out after `%.*s` (`%.*s/%.*s`, %s) touched a "
                          "secret at %" PRIu64,
                          S(tool), S(h->request_id), S(h->tool.server), S(h->tool.name),
                          effect_word(h->effect), h->time),
                      &o);
          rule = "exfiltration";
        }
      }
    }
    arbiter_policy_host_list_history_entry_free(&history);
  }
  if (!rule) {
    bool prod = false;
    for (size_t i = 0; i < a->environment.len; i++) {
      if (str_is(&a->environment.ptr[i].f0, "env")) {
        prod = str_is(&a->environment.ptr[i].f1, "prod");
        break;
      }
    }
    if (prod && listed(settings, "sensitive_tools", &tool)) {
      obligations_t o = {.len = 0};
      push(&o, dup_c("require-approval"), dup_c("security"));
      push_copies(&o, redacts);
      set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_STEP_UP,
                  fmt("`%.*s` is sensitive in prod", S(tool)), &o);
      rule = "sensitive-in-prod";
    }
  }
  if (!rule && str_is(&a->agent.attestation, "none")) {
    obligations_t o = {.len = 0};
    push(&o, dup_c("require-approval"), dup_c("identity"));
    push_copies(&o, redacts);
    set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_STEP_UP,
                fmt("agent `%.*s` is not attested", S(a->agent.id)), &o);
    rule = "unattested";
  }
  if (!rule) {
    obligations_t o = {.len = 0};
    push_copies(&o, redacts);
    const arbiter_policy_types_option_credential_t *c = &a->credential;
    if (c->is_some && c->val.expires_at.is_some) {
      push(&o, dup_c("max-ttl"), fmt("%" PRIu64, (c->val.expires_at.val - now) / 1000));
    }
    str_t resource = a->resource.is_some ? a->resource.val.id : (str_t){(uint8_t *)"-", 1};
    set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_ALLOW,
                fmt("`%.*s`: `%.*s` (%.*s, %zu claims) may call `%.*s` on `%.*s`",
                    S(a->request_id), S(a->agent.id), S(a->agent.attestation),
                    a->agent.claims.len, S(tool), S(resource)),
                &o);
    rule = "default";
  }
  free(tool.ptr);
  return rule;
}

// ---- exports -------------------------------------------------------------------------

void exports_evaluator_describe(evaluator_plugin_info_t *ret) {
  ret->name = dup_c("contract");
  ret->version = dup_c("0.1.0");
  ret->kind = dup_c("conformance");
  ret->description = dup_c(
      "exercises the whole policy contract; the same rules in Rust, JavaScript, Python and C");
}

bool exports_evaluator_validate(evaluator_string_t *settings, evaluator_string_t *err) {
  json_t j = {0};
  char *problem = json_parse(&j, settings->ptr, settings->len)
                      ? check_settings(&j)
                      : (char *)fmt("invalid settings: expected a JSON object").ptr;
  free(j.tok);
  evaluator_string_free(settings);
  if (!problem) return true;
  evaluator_string_set(err, problem);  // ownership passes to the host's post-return
  return false;
}

void exports_evaluator_evaluate(evaluator_action_t *action, evaluator_verdict_t *ret) {
  str_t text;
  arbiter_policy_host_settings(&text);
  json_t settings = {0};
  char *problem = json_parse(&settings, text.ptr, text.len)
                      ? check_settings(&settings)
                      : (char *)fmt("invalid settings: expected a JSON object").ptr;
  if (problem) {
    set_verdict(ret, ARBITER_POLICY_TYPES_EFFECT_DENY, (str_t){(uint8_t *)problem, strlen(problem)},
                NULL);
  } else {
    // Secrets: top-level argument keys named in `secret_keys`, in settings order.
    obligations_t redacts = {.len = 0};
    json_t args = {0};
    str_t sk = {(uint8_t *)"secret_keys", 11};
    int list = json_get(&settings, &sk);
    if (list >= 0 && json_parse(&args, action->arguments.ptr, action->arguments.len) &&
        args.tok[0].type == JSMN_OBJECT) {
      int e = list + 1;
      for (int q = 0; q < settings.tok[list].size; q++) {
        str_t key = json_string(&settings, e);
        // RFC 6901: `~` -> `~0`, `/` -> `~1`.
        char *ptr = xmalloc(key.len * 2 + 2);
        size_t n = 0;
        ptr[n++] = '/';
        for (size_t k = 0; k < key.len; k++) {
          if (key.ptr[k] == '~') { ptr[n++] = '~'; ptr[n++] = '0'; }
          else if (key.ptr[k] == '/') { ptr[n++] = '~'; ptr[n++] = '1'; }
          else ptr[n++] = (char)key.ptr[k];
        }
        str_t pointer = {(uint8_t *)ptr, n};
        bool seen = false;
        for (size_t k = 0; k < redacts.len; k++) seen = seen || str_eq(&redacts.items[k].detail, &pointer);
        if (!seen && json_get(&args, &key) >= 0) {
          push(&redacts, dup_c("redact"), pointer);
        } else {
          free(ptr);
        }
        free(key.ptr);
        e = json_skip(&settings, e);
      }
    }
    free(args.tok);
    const char *rule = decide(&settings, action, &redacts, ret);
    if (redacts.len > 0 && ret->effect != ARBITER_POLICY_TYPES_EFFECT_ABSTAIN) {
      ret->labels.ptr = xmalloc(sizeof(str_t));
      ret->labels.ptr[0] = dup_c("secret");
      ret->labels.len = 1;
    }
    for (size_t k = 0; k < redacts.len; k++) {
      free(redacts.items[k].kind.ptr);
      free(redacts.items[k].detail.ptr);
    }
    bool quiet = ret->effect == ARBITER_POLICY_TYPES_EFFECT_ALLOW ||
                 ret->effect == ARBITER_POLICY_TYPES_EFFECT_ABSTAIN;
    str_t message = fmt("%.*s: %s by rule %s", S(action->request_id), effect_word(ret->effect), rule);
    arbiter_policy_host_log(quiet ? ARBITER_POLICY_TYPES_LOG_LEVEL_INFO
                                  : ARBITER_POLICY_TYPES_LOG_LEVEL_WARN,
                            &message);
    free(message.ptr);
  }
  free(settings.tok);
  evaluator_string_free(&text);
  evaluator_action_free(action);
}
