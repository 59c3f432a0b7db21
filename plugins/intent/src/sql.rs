//! SQL constraints: the argument must be one read-only statement.
//!
//! # Why a tokenizer and not `sqlparser`
//!
//! `sqlparser` 0.64 with `default-features = false` adds about 2 MB to the component
//! (measured: 167 KB baseline, 2.17 MB with one `parse_sql` call), over the 1.5 MB
//! budget, and a full parser is not what decides safety anyway: the risk is a
//! *differential* between how this check splits the text and how the database does.
//! So this module is a small, dialect-aware tokenizer that gets the lexical structure
//! right (strings, quoted identifiers, comments, dollar quotes) and **refuses every
//! construct whose lexing differs between databases or depends on server settings**:
//!
//! - a backslash inside a string or quoted identifier (its meaning depends on
//!   `standard_conforming_strings` / `NO_BACKSLASH_ESCAPES`), except in PostgreSQL
//!   `E'...'` strings, whose escapes are fixed;
//! - MySQL executable comments `/*! ... */` and `/*M! ... */`; nested `/*` in a block
//!   comment (PostgreSQL nests, others do not) outside the `postgres` dialect;
//! - `#` (a comment in MySQL, an operator elsewhere) and `--` not followed by
//!   whitespace (not a comment in MySQL) in the `generic` dialect;
//! - `{`/`}` outside strings (ODBC/JDBC escapes such as `{call proc()}`);
//! - unterminated strings, identifiers and comments, NUL and control characters.
//!
//! On the tokens (comments dropped), a statement is read-only when:
//!
//! - there is exactly one statement: `;` only as the last token;
//! - it starts (after any `(`) with `SELECT`, `WITH`, `VALUES`, `TABLE` or `EXPLAIN`,
//!   or is a `SHOW`/`DESCRIBE`/`DESC` statement;
//! - no unquoted word contains a writing keyword (`INSERT`, `UPDATE`, `DELETE`,
//!   `MERGE`, `INTO`, `DROP`, `ALTER`, `CREATE`, `GRANT`, `TRUNCATE`, `COPY`, `CALL`, ...):
//!   this catches data-modifying CTEs, `SELECT ... INTO`, `EXPLAIN ANALYZE DELETE`,
//!   `FOR UPDATE`. Words are split into letter runs, so `1into` counts as `INTO`;
//! - no row-locking clause (`FOR SHARE`, `FOR KEY SHARE`, `FOR NO KEY UPDATE`) and no
//!   PostgreSQL `UESCAPE` (a Unicode-escaped identifier could spell a denied function);
//! - no call of a side-effecting function (`nextval`, `set_config`, `dblink_exec`,
//!   `lo_import`, `pg_terminate_backend`, `load_file`, `load_extension`, ... see
//!   [`BUILTIN_DENIED_FUNCTIONS`]), quoted or qualified.
//!
//! A lexical check cannot know what user-defined functions do: the database role
//! behind the tool should still be read-only. This check keeps an agent within its
//! intent; it is not a substitute for database permissions.

use crate::text::echo;

/// Functions with side effects denied by default (trailing `*` is a prefix).
pub const BUILTIN_DENIED_FUNCTIONS: &[&str] = &[
    // PostgreSQL
    "nextval",
    "setval",
    "set_config",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_promote",
    "pg_switch_wal",
    "pg_create_restore_point",
    "pg_advisory_*",
    "pg_try_advisory_*",
    "pg_notify",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_*",
    "pg_stat_file",
    "pg_file_*",
    "pg_logical_emit_message",
    "pg_create_*_replication_slot",
    "pg_drop_replication_slot",
    "pg_replication_origin_*",
    "pg_import_system_collations",
    "lo_*",
    "dblink*",
    "query_to_xml*",
    "cursor_to_xml*",
    "txid_current",
    "pg_current_xact_id",
    // MySQL / MariaDB
    "load_file",
    "sleep",
    "benchmark",
    "get_lock",
    "release_lock",
    "release_all_locks",
    "master_pos_wait",
    "source_pos_wait",
    "sys_exec",
    "sys_eval",
    // SQLite
    "load_extension",
    "writefile",
    "readfile",
    "edit",
    "fts3_tokenizer",
    // Time-based abuse
    "pg_sleep*",
];

/// Words that make a statement not read-only wherever they appear unquoted.
const DENIED_KEYWORDS: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "UPSERT",
    "INTO",
    "DROP",
    "ALTER",
    "CREATE",
    "GRANT",
    "REVOKE",
    "TRUNCATE",
    "COPY",
    "CALL",
    "EXEC",
    "EXECUTE",
    "LOCK",
    "ATTACH",
    "DETACH",
    "VACUUM",
    "REINDEX",
    "RENAME",
    "REFRESH",
    "IMPORT",
    "LOAD",
    "HANDLER",
    "PREPARE",
    "DEALLOCATE",
    "LISTEN",
    "NOTIFY",
];

/// Length bounds of [`DENIED_KEYWORDS`], to skip most words cheaply.
const KEYWORD_MIN: usize = 4;
const KEYWORD_MAX: usize = 10;

/// Statement heads of queries (fully scanned).
const QUERY_HEADS: &[&str] = &["SELECT", "WITH", "VALUES", "TABLE", "EXPLAIN"];
/// Statement heads of metadata statements (never write; not scanned for keywords).
const SHOW_HEADS: &[&str] = &["SHOW", "DESCRIBE", "DESC"];

/// Default longest statement, in bytes.
pub const DEFAULT_MAX_LENGTH: usize = 16 * 1024;

/// The database's lexical rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dialect {
    /// Refuses everything whose meaning differs between the dialects below.
    #[default]
    Generic,
    /// PostgreSQL: nested comments, `E'...'` strings, `$tag$` dollar quotes.
    Postgres,
    /// MySQL/MariaDB: `#` and `-- ` comments, backtick identifiers.
    Mysql,
    /// SQLite: backtick and `[...]` identifiers.
    Sqlite,
}

/// Settings form of a SQL constraint.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSql {
    argument: String,
    #[serde(default)]
    dialect: Dialect,
    #[serde(default)]
    denied_functions: Vec<String>,
    #[serde(default = "yes")]
    builtin_denied_functions: bool,
    #[serde(default)]
    max_length: Option<usize>,
    #[serde(default = "yes")]
    required: bool,
}

fn yes() -> bool {
    true
}

/// A function name pattern, lowercase.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FnPattern {
    Exact(String),
    Prefix(String),
    /// `pg_create_*_replication_slot`: prefix and suffix.
    Infix(String, String),
}

impl FnPattern {
    fn parse(text: &str) -> Result<Self, String> {
        let lower = text.to_ascii_lowercase();
        let ok = !lower.is_empty()
            && lower
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '*')
            && lower.matches('*').count() <= 1;
        if !ok {
            return Err(format!(
                "sql.denied_functions entry `{}` must be a function name, with at most one `*`",
                echo(text)
            ));
        }
        Ok(match lower.split_once('*') {
            None => Self::Exact(lower),
            Some((pre, "")) => Self::Prefix(pre.to_owned()),
            Some((pre, post)) => Self::Infix(pre.to_owned(), post.to_owned()),
        })
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            Self::Exact(e) => e == name,
            Self::Prefix(p) => name.starts_with(p.as_str()),
            Self::Infix(p, s) => {
                name.len() >= p.len() + s.len()
                    && name.starts_with(p.as_str())
                    && name.ends_with(s.as_str())
            }
        }
    }
}

/// A compiled SQL constraint.
#[derive(Debug, Clone)]
pub struct SqlConstraint {
    /// JSON pointer to the argument.
    pub argument: String,
    dialect: Dialect,
    functions: Vec<FnPattern>,
    max_length: usize,
    /// Whether the argument must be present.
    pub required: bool,
}

impl SqlConstraint {
    /// Compiles the settings form.
    pub fn compile(raw: RawSql) -> Result<Self, String> {
        crate::text::validate_pointer(&raw.argument)?;
        let mut functions = Vec::new();
        if raw.builtin_denied_functions {
            for f in BUILTIN_DENIED_FUNCTIONS {
                functions.push(FnPattern::parse(f)?);
            }
        }
        for f in &raw.denied_functions {
            functions.push(FnPattern::parse(f)?);
        }
        let max_length = raw.max_length.unwrap_or(DEFAULT_MAX_LENGTH);
        if max_length == 0 {
            return Err("sql.max_length must be at least 1".to_owned());
        }
        Ok(Self {
            argument: raw.argument,
            dialect: raw.dialect,
            functions,
            max_length,
            required: raw.required,
        })
    }

    /// Checks one argument value.
    pub fn check(&self, value: &str) -> Result<(), String> {
        let arg = echo(&self.argument);
        if value.len() > self.max_length {
            return Err(format!(
                "argument `{arg}` sql is longer than {} bytes",
                self.max_length
            ));
        }
        let tokens = tokenize(value, self.dialect)
            .map_err(|why| format!("argument `{arg}` sql `{}` {why}", echo(value)))?;
        self.read_only(&tokens)
            .map_err(|why| format!("argument `{arg}` sql `{}` {why}", echo(value)))
    }

    fn read_only(&self, tokens: &[Tok<'_>]) -> Result<(), String> {
        // One statement: `;` may only end it.
        let body = match tokens.split_last() {
            Some((Tok::Punct(b';'), rest)) => rest,
            _ => tokens,
        };
        if body.contains(&Tok::Punct(b';')) {
            return Err("has more than one statement".to_owned());
        }
        let head = match body.iter().find(|t| **t != Tok::Punct(b'(')) {
            Some(Tok::Word(w)) => *w,
            None => return Err("is empty".to_owned()),
            Some(_) => return Err("does not start with a statement keyword".to_owned()),
        };
        let is = |list: &[&str], word: &str| list.iter().any(|k| k.eq_ignore_ascii_case(word));
        if is(SHOW_HEADS, head) {
            return Ok(());
        }
        if !is(QUERY_HEADS, head) {
            return Err(format!(
                "is a `{}` statement, which is not read-only",
                echo(&head.to_ascii_uppercase())
            ));
        }
        let mut iter = body.iter().peekable();
        while let Some(tok) = iter.next() {
            let next = iter.peek().copied();
            let name = match tok {
                Tok::Word(w) => {
                    for run in w.split(|c: char| !(c.is_ascii_alphabetic() || c == '_')) {
                        if (KEYWORD_MIN..=KEYWORD_MAX).contains(&run.len())
                            && is(DENIED_KEYWORDS, run)
                        {
                            return Err(format!(
                                "contains `{}`, which is not read-only",
                                run.to_ascii_uppercase()
                            ));
                        }
                    }
                    if w.eq_ignore_ascii_case("uescape") {
                        return Err(
                            "has a `UESCAPE` Unicode escape, which can hide names".to_owned()
                        );
                    }
                    if w.eq_ignore_ascii_case("for")
                        && let Some(Tok::Word(n)) = next
                        && is(&["share", "key", "no"], n)
                    {
                        return Err("has a row-locking `FOR ...` clause".to_owned());
                    }
                    *w
                }
                Tok::Quoted(q) => *q,
                Tok::Punct(_) | Tok::Str => continue,
            };
            if next == Some(&Tok::Punct(b'(')) {
                let name = name.to_ascii_lowercase();
                if self.functions.iter().any(|f| f.matches(&name)) {
                    return Err(format!(
                        "calls `{}`, a function with side effects",
                        echo(&name)
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A token; comments and whitespace are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok<'a> {
    /// Unquoted word: keyword, identifier, number, `$1` parameter.
    Word(&'a str),
    /// Quoted identifier (its raw content, enough for function-name checks).
    Quoted(&'a str),
    /// String literal (content irrelevant).
    Str,
    /// One ASCII punctuation byte.
    Punct(u8),
}

struct Lexer<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    dialect: Dialect,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

fn is_word(b: u8, dialect: Dialect) -> bool {
    b.is_ascii_alphanumeric()
        || b == b'_'
        || b >= 0x80
        || (b == b'$' && matches!(dialect, Dialect::Postgres | Dialect::Mysql))
}

impl<'a> Lexer<'a> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.at + ahead).copied()
    }

    fn line_comment(&mut self) {
        // Ends at `\n` or `\r`: the shortest extent any dialect gives it, so nothing
        // a database executes is ever hidden from this check.
        while let Some(b) = self.peek(0) {
            if b == b'\n' || b == b'\r' {
                break;
            }
            self.at += 1;
        }
    }

    fn block_comment(&mut self) -> Result<(), String> {
        if self.peek(2) == Some(b'!') || (self.peek(2) == Some(b'M') && self.peek(3) == Some(b'!'))
        {
            return Err("has a MySQL executable comment `/*!`".to_owned());
        }
        self.at += 2;
        let mut depth = 1usize;
        loop {
            match (self.peek(0), self.peek(1)) {
                (None, _) => return Err("has an unterminated comment".to_owned()),
                (Some(b'*'), Some(b'/')) => {
                    self.at += 2;
                    depth -= 1;
                    if depth == 0 {
                        return Ok(());
                    }
                }
                (Some(b'/'), Some(b'*')) => {
                    if self.dialect != Dialect::Postgres {
                        return Err(
                            "has a nested `/*` comment, which databases disagree on".to_owned()
                        );
                    }
                    self.at += 2;
                    depth += 1;
                }
                (Some(0), _) => return Err("contains a NUL byte".to_owned()),
                _ => self.at += 1,
            }
        }
    }

    /// A quoted run closed by `close`, where a doubled `close` escapes it. Returns the
    /// content. Backslashes are refused unless `escapes` (PostgreSQL `E'...'`).
    fn quoted(&mut self, close: u8, doubled: bool, escapes: bool) -> Result<&'a str, String> {
        self.at += 1;
        let start = self.at;
        loop {
            match self.peek(0) {
                None => return Err("has an unterminated quoted string or identifier".to_owned()),
                Some(0) => return Err("contains a NUL byte".to_owned()),
                Some(b'\\') if escapes => {
                    if self.peek(1).is_none() {
                        return Err("has an unterminated quoted string".to_owned());
                    }
                    self.at += 2;
                }
                Some(b'\\') => {
                    return Err(
                        "has a backslash in a quoted string or identifier, whose meaning depends on server settings"
                            .to_owned(),
                    );
                }
                Some(b) if b == close => {
                    if doubled && self.peek(1) == Some(close) {
                        self.at += 2;
                    } else {
                        let content = self.text.get(start..self.at).unwrap_or("");
                        self.at += 1;
                        return Ok(content);
                    }
                }
                Some(_) => self.at += 1,
            }
        }
    }

    /// PostgreSQL `$tag$ ... $tag$` (at `$`); `None` if this `$` does not open one.
    fn dollar_quote(&mut self) -> Result<Option<()>, String> {
        let mut end = self.at + 1;
        let first = self.bytes.get(end).copied();
        if first.is_some_and(|b| b.is_ascii_digit()) {
            return Ok(None);
        }
        while let Some(b) = self.bytes.get(end).copied() {
            if b == b'$' {
                break;
            }
            if !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80) {
                return Ok(None);
            }
            end += 1;
        }
        let Some(tag) = self.text.get(self.at..=end) else {
            return Ok(None);
        };
        if self.bytes.get(end) != Some(&b'$') {
            return Ok(None);
        }
        let body_start = end + 1;
        let rest = self.text.get(body_start..).unwrap_or("");
        match rest.find(tag) {
            Some(pos) => {
                if rest.get(..pos).is_some_and(|b| b.contains('\0')) {
                    return Err("contains a NUL byte".to_owned());
                }
                self.at = body_start + pos + tag.len();
                Ok(Some(()))
            }
            None => Err("has an unterminated dollar-quoted string".to_owned()),
        }
    }

    fn word(&mut self) -> &'a str {
        let start = self.at;
        while self.peek(0).is_some_and(|b| is_word(b, self.dialect)) {
            self.at += 1;
        }
        self.text.get(start..self.at).unwrap_or("")
    }
}

fn tokenize(text: &str, dialect: Dialect) -> Result<Vec<Tok<'_>>, String> {
    let mut lx = Lexer {
        text,
        bytes: text.as_bytes(),
        at: 0,
        dialect,
    };
    let mut out = Vec::new();
    while let Some(b) = lx.peek(0) {
        match b {
            _ if is_space(b) => lx.at += 1,
            0 => return Err("contains a NUL byte".to_owned()),
            _ if b < 0x20 || b == 0x7f => return Err("contains a control character".to_owned()),
            b'-' if lx.peek(1) == Some(b'-') => {
                let spaced = lx.peek(2).is_none_or(|c| is_space(c) || c < 0x20);
                match dialect {
                    Dialect::Postgres | Dialect::Sqlite => lx.line_comment(),
                    Dialect::Mysql | Dialect::Generic if spaced => lx.line_comment(),
                    Dialect::Mysql => {
                        out.push(Tok::Punct(b'-'));
                        lx.at += 1;
                    }
                    Dialect::Generic => {
                        return Err(
                            "has `--` not followed by a space, which is a comment in some databases and not in others"
                                .to_owned(),
                        );
                    }
                }
            }
            b'#' => match dialect {
                Dialect::Mysql => lx.line_comment(),
                Dialect::Postgres | Dialect::Sqlite => {
                    out.push(Tok::Punct(b'#'));
                    lx.at += 1;
                }
                Dialect::Generic => {
                    return Err(
                        "has `#`, which is a comment in MySQL and an operator elsewhere (set a dialect)"
                            .to_owned(),
                    );
                }
            },
            b'/' if lx.peek(1) == Some(b'*') => lx.block_comment()?,
            b'{' | b'}' => return Err("has an ODBC escape brace `{`".to_owned()),
            b'\'' => {
                lx.quoted(b'\'', true, false)?;
                out.push(Tok::Str);
            }
            b'"' => {
                let content = lx.quoted(b'"', true, false)?;
                out.push(Tok::Quoted(content));
            }
            b'`' => match dialect {
                Dialect::Mysql | Dialect::Sqlite => {
                    let content = lx.quoted(b'`', true, false)?;
                    out.push(Tok::Quoted(content));
                }
                Dialect::Postgres | Dialect::Generic => {
                    return Err("has a backtick, which this dialect does not quote with".to_owned());
                }
            },
            b'[' if dialect == Dialect::Sqlite => {
                let content = lx.quoted(b']', false, false)?;
                out.push(Tok::Quoted(content));
            }
            b'[' if dialect == Dialect::Generic => {
                return Err(
                    "has `[`, an identifier quote in some databases (set a dialect)".to_owned(),
                );
            }
            b'$' => match dialect {
                Dialect::Postgres => {
                    if lx.dollar_quote()?.is_some() {
                        out.push(Tok::Str);
                    } else if lx.peek(1).is_some_and(|c| c.is_ascii_digit()) {
                        lx.at += 1;
                        out.push(Tok::Word(lx.word()));
                    } else {
                        return Err("has a stray `$`".to_owned());
                    }
                }
                Dialect::Mysql => out.push(Tok::Word(lx.word())),
                Dialect::Sqlite | Dialect::Generic => {
                    if lx.peek(1).is_some_and(|c| c.is_ascii_digit()) {
                        lx.at += 1;
                        out.push(Tok::Word(lx.word()));
                    } else {
                        return Err(
                            "has `$`, which databases lex differently (set a dialect)".to_owned()
                        );
                    }
                }
            },
            b'e' | b'E' if dialect == Dialect::Postgres && lx.peek(1) == Some(b'\'') => {
                lx.at += 1;
                lx.quoted(b'\'', true, true)?;
                out.push(Tok::Str);
            }
            _ if is_word(b, dialect) => out.push(Tok::Word(lx.word())),
            _ => {
                out.push(Tok::Punct(b));
                lx.at += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(dialect: Dialect) -> SqlConstraint {
        SqlConstraint::compile(RawSql {
            argument: "/sql".to_owned(),
            dialect,
            denied_functions: vec!["audit_write".to_owned()],
            builtin_denied_functions: true,
            max_length: None,
            required: true,
        })
        .unwrap()
    }

    fn ok(d: Dialect, q: &str) {
        let r = sql(d).check(q);
        assert!(r.is_ok(), "{d:?} should allow {q:?}: {r:?}");
    }

    fn denied(d: Dialect, q: &str, why: &str) {
        match sql(d).check(q) {
            Ok(()) => panic!("{d:?} should deny {q:?}"),
            Err(e) => assert!(e.contains(why), "{q:?}: {e:?} should mention {why:?}"),
        }
    }

    #[test]
    fn read_only_statements() {
        use Dialect::*;
        for d in [Generic, Postgres, Mysql, Sqlite] {
            ok(d, "SELECT id, name FROM customers WHERE id = 42");
            ok(d, "select count(*) from invoices;");
            ok(d, "WITH t AS (SELECT 1 AS x) SELECT x FROM t");
            ok(d, "(SELECT 1) UNION (SELECT 2)");
            ok(d, "EXPLAIN SELECT * FROM t");
            ok(d, "SHOW TABLES");
            ok(d, "VALUES (1), (2)");
            ok(d, "SELECT 'it''s; DROP TABLE t' AS s -- trailing comment");
            ok(
                d,
                "SELECT \"updated_at\", created_by FROM t /* a; comment */",
            );
            ok(d, "SELECT replace(name, 'a', 'b') FROM t WHERE x = ?");
        }
        ok(Postgres, "SELECT $1::int, data #>> '{a}' FROM t");
        denied(
            Postgres,
            "SELECT U&\"nextv!0061l\" UESCAPE '!' ('s')",
            "`UESCAPE`",
        );
        denied(Postgres, "SELECT U&\"nextv\\0061l\"('s')", "backslash");
        ok(Postgres, "SELECT $body$ ; DROP TABLE t; $body$ AS s");
        ok(Postgres, "SELECT E'it\\'s; DROP' AS s");
        ok(Postgres, "SELECT 1 /* outer /* inner */ still comment; */");
        ok(Postgres, "EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM t");
        ok(Mysql, "SELECT `id` FROM `t` # comment; DROP TABLE t");
        ok(Mysql, "SHOW CREATE TABLE t");
        ok(Sqlite, "SELECT [id] FROM [t]");
    }

    #[test]
    fn writes_and_ddl() {
        use Dialect::*;
        for d in [Generic, Postgres, Mysql, Sqlite] {
            denied(d, "INSERT INTO t VALUES (1)", "`INSERT` statement");
            denied(d, "update t set a = 1", "`UPDATE` statement");
            denied(d, "DELETE FROM t", "`DELETE` statement");
            denied(d, "DROP TABLE t", "`DROP` statement");
            denied(d, "ALTER TABLE t ADD c int", "`ALTER` statement");
            denied(d, "CREATE TABLE x AS SELECT 1", "`CREATE` statement");
            denied(d, "GRANT ALL ON t TO bob", "`GRANT` statement");
            denied(d, "TRUNCATE t", "`TRUNCATE` statement");
            denied(d, "COPY t TO '/tmp/x'", "`COPY` statement");
            denied(d, "CALL p()", "`CALL` statement");
            denied(d, "SELECT * INTO backup FROM t", "`INTO`");
            denied(d, "SELECT 1into x", "`INTO`");
            denied(
                d,
                "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
                "`DELETE`",
            );
            denied(d, "EXPLAIN ANALYZE DELETE FROM t", "`DELETE`");
            denied(d, "SELECT * FROM t FOR UPDATE", "`UPDATE`");
            denied(d, "SELECT * FROM t FOR SHARE", "row-locking");
            denied(d, "SELECT 1; DROP TABLE t", "more than one statement");
            denied(d, "SELECT 1;;", "more than one statement");
            denied(d, "", "is empty");
            denied(d, "  ;  ", "is empty");
            denied(d, "/* only */ -- comments", "is empty");
            denied(d, "SELECT nextval('s')", "`nextval`");
            denied(
                d,
                "SELECT pg_catalog.set_config('x', 'y', false)",
                "`set_config`",
            );
            denied(d, "SELECT \"SET_CONFIG\"('x','y',false)", "`set_config`");
            denied(d, "SELECT audit_write(1)", "`audit_write`");
            denied(
                d,
                "SELECT * FROM dblink_exec('DELETE FROM t')",
                "`dblink_exec`",
            );
            denied(d, "SELECT 'a", "unterminated");
            denied(d, "SELECT 1 /* open", "unterminated");
            denied(d, "SELECT 1\0", "NUL");
            denied(d, "SELECT 'a\\' ; DROP TABLE t; --'", "backslash");
            denied(d, "SELECT 1 /*! ; DROP TABLE t */", "executable comment");
            denied(d, "{call p()}", "ODBC");
            denied(d, "SET ROLE admin", "`SET` statement");
        }
    }

    #[test]
    fn dialect_differentials() {
        use Dialect::*;
        // `#` hides a string opener from MySQL: the rest would be a second statement.
        denied(Generic, "SELECT 1 # '\n; DROP TABLE t; -- '", "`#`");
        denied(
            Mysql,
            "SELECT 1 # '\n; DROP TABLE t; -- '",
            "more than one statement",
        );
        // In PostgreSQL `#` is an operator and the string really is one literal.
        ok(Postgres, "SELECT 1 # '\n; DROP TABLE t; -- '");
        // `--1` is not a comment in MySQL.
        denied(Generic, "SELECT 1 --1\n", "`--`");
        denied(
            Mysql,
            "SELECT 1 --1 ; DROP TABLE t",
            "more than one statement",
        );
        // Nested comments: MySQL/SQLite end at the first `*/`.
        denied(Generic, "SELECT 1 /* /* */ ; DROP TABLE t; */", "nested");
        denied(Sqlite, "SELECT 1 /* /* */ ; DROP TABLE t; */", "nested");
        // Dollar quotes are PostgreSQL only.
        denied(Generic, "SELECT $a$ ; DROP TABLE t; $a$", "`$`");
        denied(
            Mysql,
            "SELECT $a$ ; DROP TABLE t; $a$",
            "more than one statement",
        );
        denied(Postgres, "SELECT $a$ unterminated", "unterminated dollar");
        // `[` quotes identifiers in SQLite.
        denied(Generic, "SELECT [a'] ; DROP TABLE t; --']", "`[`");
        denied(
            Sqlite,
            "SELECT [a'] ; DROP TABLE t; --']",
            "more than one statement",
        );
        // Line comments end at `\r` too.
        denied(
            Postgres,
            "SELECT 1 -- x\r; DROP TABLE t",
            "more than one statement",
        );
        // Backticks are not quotes in PostgreSQL.
        denied(Postgres, "SELECT `x`", "backtick");
    }

    #[test]
    fn keyword_bounds_hold() {
        assert!(
            DENIED_KEYWORDS
                .iter()
                .all(|k| (KEYWORD_MIN..=KEYWORD_MAX).contains(&k.len()))
        );
    }

    #[test]
    fn length_and_settings() {
        let long = format!("SELECT '{}'", "a".repeat(DEFAULT_MAX_LENGTH));
        denied(Dialect::Postgres, &long, "longer than");
        let bad = |f: &str| {
            SqlConstraint::compile(RawSql {
                argument: "/sql".to_owned(),
                dialect: Dialect::Generic,
                denied_functions: vec![f.to_owned()],
                builtin_denied_functions: false,
                max_length: None,
                required: true,
            })
        };
        assert!(bad("a*b*").is_err());
        assert!(bad("drop table").is_err());
        assert!(bad("my_fn").is_ok());
    }
}
