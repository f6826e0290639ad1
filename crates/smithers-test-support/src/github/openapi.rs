//! GitHub's published OpenAPI description of its REST API (npm
//! `@octokit/openapi`, `generated/api.github.com.json`, OpenAPI 3.0.3), the
//! yardstick the stand-in holds every request and every answer to.
//!
//! The 13 MB document is read once per process; a schema is compiled the
//! first time it is needed (with only the component schemas it reaches)
//! and kept. OpenAPI 3.0's `nullable: true` is turned into JSON Schema's
//! `null` type as the document is read, and schemas are checked as draft 4
//! (the JSON Schema OpenAPI 3.0 builds on: `$ref` siblings are ignored),
//! formats included.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

/// The environment variable naming the description's file;
/// `scripts/test` installs it (`ensure_octokit` in `scripts/lib.sh`) and
/// sets it.
pub const OPENAPI_ENV: &str = "SMITHERS_TEST_GITHUB_OPENAPI";

/// The REST API version the stand-in speaks (the `X-GitHub-Api-Version`
/// GitHub takes).
pub const API_VERSION: &str = "2022-11-28";

/// The description, read and prepared.
pub struct Description {
    doc: Value,
    routes: Vec<Route>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// One operation of the description: a method on a path template.
struct Route {
    method: String,
    template: String,
    segments: Vec<Segment>,
}

enum Segment {
    Literal(String),
    Param(String),
}

/// A request matched to the operation that describes it.
#[derive(Debug, Clone)]
pub struct Operation {
    /// `get`, `post`, … (lower case, as in the description).
    pub method: String,
    /// The path template, e.g. `/repos/{owner}/{repo}/pulls`.
    pub template: String,
    /// Its `operationId`, e.g. `pulls/create`.
    pub id: String,
    /// The path parameters, percent-decoded.
    pub params: HashMap<String, String>,
}

static DESCRIPTION: OnceLock<Result<Description, String>> = OnceLock::new();

/// The description named by [`OPENAPI_ENV`], read on first use; an error
/// saying what to do when the variable is unset or the file unreadable.
pub fn load() -> Result<&'static Description, String> {
    DESCRIPTION
        .get_or_init(|| {
            let path = std::env::var(OPENAPI_ENV).map_err(|_| {
                format!(
                    "the GitHub stand-in needs {OPENAPI_ENV}, the path of GitHub's OpenAPI description \
                     (npm @octokit/openapi, generated/api.github.com.json); scripts/test installs it \
                     (ensure_octokit in scripts/lib.sh) and sets it — run scripts/test, or \
                     `. scripts/lib.sh; ensure_octokit` and export the variable it sets"
                )
            })?;
            let text = std::fs::read(&path).map_err(|e| format!("{OPENAPI_ENV}={path}: {e}"))?;
            let doc: Value =
                serde_json::from_slice(&text).map_err(|e| format!("{OPENAPI_ENV}={path}: {e}"))?;
            Ok(Description::new(doc))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// [`load`], or the test's failure with its reason.
pub fn description() -> &'static Description {
    match load() {
        Ok(d) => d,
        Err(e) => panic!("{e}"),
    }
}

impl Description {
    fn new(mut doc: Value) -> Description {
        nullable_to_null(&mut doc);
        mend(&mut doc);
        let mut routes = Vec::new();
        if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
            for (template, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
                    if item.contains_key(method) {
                        routes.push(Route {
                            method: method.into(),
                            template: template.clone(),
                            segments: segments(template),
                        });
                    }
                }
            }
        }
        Description {
            doc,
            routes,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The operation `method` on `path` (no query) is, if the description
    /// has one. Literal segments win over parameters (`/pulls/comments`
    /// over `/pulls/{pull_number}`); a trailing parameter takes the rest
    /// of the path when nothing else matches (a branch named `a/b`).
    pub fn find(&self, method: &str, path: &str) -> Option<Operation> {
        let method = method.to_ascii_lowercase();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(usize, &Route, HashMap<String, String>)> = None;
        for greedy in [false, true] {
            for route in self.routes.iter().filter(|r| r.method == method) {
                let Some((literals, params)) = route.matches(&parts, greedy) else {
                    continue;
                };
                if best.as_ref().is_none_or(|(n, _, _)| literals > *n) {
                    best = Some((literals, route, params));
                }
            }
            if best.is_some() {
                break;
            }
        }
        let (_, route, params) = best?;
        let id = self
            .operation(&route.method, &route.template)
            .and_then(|o| o.get("operationId"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Some(Operation {
            method: route.method.clone(),
            template: route.template.clone(),
            id,
            params,
        })
    }

    fn operation(&self, method: &str, template: &str) -> Option<&Value> {
        self.doc.get("paths")?.get(template)?.get(method)
    }

    /// What is wrong with a request to `op`: its path and query
    /// parameters (unknown query parameters included) and its JSON body
    /// against the operation's `requestBody`. Empty when it is right.
    pub fn check_request(
        &self,
        op: &Operation,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let mut wrong = Vec::new();
        let Some(operation) = self.operation(&op.method, &op.template) else {
            return vec![format!("{} {} is not described", op.method, op.template)];
        };
        let mut parameters: Vec<&Value> = Vec::new();
        for list in [
            self.doc
                .get("paths")
                .and_then(|p| p.get(&op.template))
                .and_then(|i| i.get("parameters")),
            operation.get("parameters"),
        ]
        .into_iter()
        .flatten()
        {
            for p in list.as_array().into_iter().flatten() {
                parameters.push(self.resolve(p));
            }
        }
        for p in &parameters {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            let place = p.get("in").and_then(Value::as_str).unwrap_or_default();
            let value = match place {
                "path" => op.params.get(name).cloned(),
                "query" => query
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone()),
                _ => continue,
            };
            let Some(value) = value else {
                if p.get("required").and_then(Value::as_bool) == Some(true) {
                    wrong.push(format!("{place} parameter {name} is required"));
                }
                continue;
            };
            if let Some(schema) = p.get("schema") {
                let typed = typed_parameter(&value, schema);
                for e in self.check(schema, &typed) {
                    wrong.push(format!("{place} parameter {name}={value}: {e}"));
                }
            }
        }
        for (k, _) in query {
            let known = parameters.iter().any(|p| {
                p.get("in").and_then(Value::as_str) == Some("query")
                    && p.get("name").and_then(Value::as_str) == Some(k.as_str())
            });
            if !known {
                wrong.push(format!("query parameter {k} is not one of the operation's"));
            }
        }
        let request_body = operation.get("requestBody").map(|b| self.resolve(b));
        let schema = request_body
            .and_then(|b| b.get("content"))
            .and_then(|c| c.get("application/json"))
            .and_then(|c| c.get("schema"));
        match (body, schema) {
            (Some(body), Some(schema)) => {
                for e in self.check(schema, body) {
                    wrong.push(format!("request body: {e}"));
                }
            }
            (Some(_), None) => wrong.push("the operation takes no JSON body".into()),
            (None, Some(_)) => {
                if request_body
                    .and_then(|b| b.get("required"))
                    .and_then(Value::as_bool)
                    == Some(true)
                {
                    wrong.push("the operation's request body is required".into());
                }
            }
            (None, None) => {}
        }
        wrong
    }

    /// What is wrong with an answer `status`/`body` to `op`: the body
    /// against the schema the operation gives for that status. Errors
    /// the operation does not list (every route can answer 401, 403 for
    /// a rate limit, 5xx) are held to GitHub's `basic-error`; a success
    /// it does not list is wrong.
    pub fn check_response(&self, op: &Operation, status: u16, body: Option<&Value>) -> Vec<String> {
        let Some(operation) = self.operation(&op.method, &op.template) else {
            return vec![format!("{} {} is not described", op.method, op.template)];
        };
        let responses = operation.get("responses");
        let response = responses
            .and_then(|r| r.get(status.to_string()))
            .map(|r| self.resolve(r));
        let schema = match response {
            Some(r) => r
                .get("content")
                .and_then(|c| c.get("application/json"))
                .and_then(|c| c.get("schema"))
                .cloned(),
            // A conditional GET is answered 304 wherever GitHub sends an
            // ETag, listed or not.
            None if status == 304 && op.method == "get" => None,
            None if status >= 400 => Some(serde_json::json!({
                "$ref": "#/components/schemas/basic-error"
            })),
            None => {
                return vec![format!(
                    "status {status} is not one the operation answers with"
                )];
            }
        };
        match (schema, body) {
            (Some(schema), Some(body)) => self
                .check(&schema, body)
                .into_iter()
                .map(|e| format!("{status} body: {e}"))
                .collect(),
            (Some(_), None) => vec![format!("{status} answered without the JSON body described")],
            (None, Some(_)) if status == 304 => vec!["304 with a body".into()],
            _ => Vec::new(),
        }
    }

    /// What is wrong with a webhook payload of `event` (`pull_request`)
    /// and `action` (`opened`) against the description's `x-webhooks`
    /// (`pull-request-opened`; `push` for one without actions).
    pub fn check_webhook(&self, event: &str, action: Option<&str>, payload: &Value) -> Vec<String> {
        let key = match action {
            Some(a) => format!("{event}-{a}"),
            None => event.to_string(),
        }
        .replace('_', "-");
        let schema = self
            .doc
            .get("x-webhooks")
            .and_then(|w| w.get(&key))
            .and_then(|w| w.get("post"))
            .and_then(|p| p.get("requestBody"))
            .and_then(|b| b.get("content"))
            .and_then(|c| c.get("application/json"))
            .and_then(|c| c.get("schema"));
        match schema {
            Some(schema) => self
                .check(schema, payload)
                .into_iter()
                .map(|e| format!("{key} webhook: {e}"))
                .collect(),
            None => vec![format!("GitHub's description has no {key} webhook")],
        }
    }

    /// The value of the documented example `name`
    /// (`#/components/examples/{name}`), the stand-in's template for an
    /// answer.
    pub fn example(&self, name: &str) -> Value {
        self.doc
            .pointer(&format!("/components/examples/{name}/value"))
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// `value` checked against the component schema `name`
    /// (`#/components/schemas/{name}`).
    pub fn check_schema(&self, name: &str, value: &Value) -> Vec<String> {
        self.check(
            &serde_json::json!({"$ref": format!("#/components/schemas/{name}")}),
            value,
        )
    }

    /// A `$ref` to a component followed (one level: components are not
    /// references to references in GitHub's document).
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => r
                .strip_prefix('#')
                .and_then(|p| self.doc.pointer(p))
                .unwrap_or(value),
            None => value,
        }
    }

    fn check(&self, schema: &Value, instance: &Value) -> Vec<String> {
        let validator = match self.validator(schema) {
            Ok(v) => v,
            Err(e) => return vec![format!("the schema does not compile: {e}")],
        };
        validator
            .iter_errors(instance)
            .take(8)
            .map(|e| format!("{} at '{}'", e, e.instance_path()))
            .collect()
    }

    /// A compiled validator of `schema`, kept by its text: the schema
    /// with the component schemas it reaches, nothing more, so that
    /// compiling stays cheap.
    fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = schema.to_string();
        if let Some(v) = self.lock().get(&key) {
            return Ok(v.clone());
        }
        let mut reached = BTreeSet::new();
        let mut todo = Vec::new();
        refs(schema, &mut todo);
        while let Some(name) = todo.pop() {
            if reached.insert(name.clone())
                && let Some(s) = self.doc.pointer(&format!("/components/schemas/{name}"))
            {
                refs(s, &mut todo);
            }
        }
        let mut components = Map::new();
        for name in reached {
            if let Some(s) = self.doc.pointer(&format!("/components/schemas/{name}")) {
                components.insert(name, s.clone());
            }
        }
        let root = serde_json::json!({
            "allOf": [schema],
            "components": {"schemas": components},
        });
        let compiled = jsonschema::draft4::options()
            .should_validate_formats(true)
            .build(&root)
            .map_err(|e| e.to_string())?;
        let compiled = Arc::new(compiled);
        self.lock().insert(key, compiled.clone());
        Ok(compiled)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<jsonschema::Validator>>> {
        // A panic elsewhere while compiling leaves the cache usable.
        self.validators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Route {
    /// The number of literal segments matched and the parameters, if
    /// `parts` fit this template; `greedy` lets a trailing parameter take
    /// several segments.
    fn matches(&self, parts: &[&str], greedy: bool) -> Option<(usize, HashMap<String, String>)> {
        if parts.len() != self.segments.len()
            && !(greedy
                && parts.len() > self.segments.len()
                && matches!(self.segments.last(), Some(Segment::Param(_))))
        {
            return None;
        }
        let mut literals = 0;
        let mut params = HashMap::new();
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                Segment::Literal(l) => {
                    if parts.get(i) != Some(&l.as_str()) {
                        return None;
                    }
                    literals += 1;
                }
                Segment::Param(name) => {
                    let value = if i + 1 == self.segments.len() {
                        parts[i..].join("/")
                    } else {
                        parts.get(i)?.to_string()
                    };
                    if value.is_empty() {
                        return None;
                    }
                    params.insert(name.clone(), percent_decode(&value));
                }
            }
        }
        Some((literals, params))
    }
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .trim_start_matches('/')
        .split('/')
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => Segment::Param(name.into()),
                None => Segment::Literal(s.into()),
            },
        )
        .collect()
}

/// `%XX` sequences decoded (a path segment or a query value; `+` is a
/// space in a query, which [`query_pairs`] handles).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A query string's pairs, decoded.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                percent_decode(&k.replace('+', " ")),
                percent_decode(&v.replace('+', " ")),
            )
        })
        .collect()
}

/// A parameter's text as the JSON value its schema's type wants (query
/// and path parameters arrive as text).
fn typed_parameter(value: &str, schema: &Value) -> Value {
    let ty = schema.get("type");
    let is = |t: &str| match ty {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(a)) => a.iter().any(|x| x == t),
        _ => false,
    };
    if is("integer")
        && let Ok(n) = value.parse::<i64>()
    {
        return Value::from(n);
    }
    if is("number")
        && let Ok(n) = value.parse::<f64>()
    {
        return Value::from(n);
    }
    if is("boolean") && (value == "true" || value == "false") {
        return Value::Bool(value == "true");
    }
    if is("array") {
        return Value::Array(
            value
                .split(',')
                .map(|s| Value::String(s.to_string()))
                .collect(),
        );
    }
    Value::String(value.to_string())
}

/// Where the description contradicts itself, GitHub's own answers are
/// the judge: "List installations for the authenticated app" describes
/// an item's `account` as `allOf` a user and an enterprise, which no
/// account is (the same item in the `installation` component, which
/// "Get an installation" answers with, says `anyOf`), so its items are
/// held to that component.
fn mend(doc: &mut Value) {
    if let Some(items) = doc.pointer_mut(
        "/paths/~1app~1installations/get/responses/200/content/application~1json/schema/items",
    ) {
        *items = serde_json::json!({"$ref": "#/components/schemas/installation"});
    }
}

/// The component schema names `schema` refers to.
fn refs(schema: &Value, into: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref"
                    && let Some(name) = v
                        .as_str()
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                {
                    into.push(name.to_string());
                } else {
                    refs(v, into);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, into)),
        _ => {}
    }
}

/// OpenAPI 3.0's `nullable: true` as JSON Schema says it: `null` added to
/// the `type` (and to an `enum`), or, on a schema without a type (a
/// `$ref`, an `allOf`), `anyOf` the schema or `null`. Examples are data
/// and are left alone; the names in a `properties` map are not keywords.
fn nullable_to_null(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                match k.as_str() {
                    "example" | "examples" => {}
                    "properties" | "patternProperties" => {
                        if let Value::Object(props) = v {
                            props.values_mut().for_each(nullable_to_null);
                        }
                    }
                    _ => nullable_to_null(v),
                }
            }
            if map.get("nullable") == Some(&Value::Bool(true)) {
                map.remove("nullable");
                match map.get_mut("type") {
                    Some(Value::String(t)) => {
                        let t = std::mem::take(t);
                        map.insert("type".into(), serde_json::json!([t, "null"]));
                        if let Some(Value::Array(e)) = map.get_mut("enum")
                            && !e.contains(&Value::Null)
                        {
                            e.push(Value::Null);
                        }
                    }
                    _ => {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), serde_json::json!([inner, {"type": "null"}]));
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(nullable_to_null),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nullable_becomes_a_null_type() {
        let mut s = serde_json::json!({
            "type": "object",
            "properties": {
                "nullable": {"type": "string", "nullable": true},
                "e": {"type": "string", "enum": ["a"], "nullable": true},
                "r": {"allOf": [{"$ref": "#/x"}], "nullable": true},
            },
        });
        nullable_to_null(&mut s);
        assert_eq!(
            s["properties"]["nullable"],
            serde_json::json!({"type": ["string", "null"]})
        );
        assert_eq!(s["properties"]["e"]["enum"], serde_json::json!(["a", null]));
        assert_eq!(
            s["properties"]["r"],
            serde_json::json!({"anyOf": [{"allOf": [{"$ref": "#/x"}]}, {"type": "null"}]})
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%20c%"), "a/b c%");
        assert_eq!(
            query_pairs("head=o%3Ab&state=all&x"),
            vec![
                ("head".into(), "o:b".into()),
                ("state".into(), "all".into()),
                ("x".into(), String::new())
            ]
        );
    }
}
