//! The tool definitions `tools/list` answers with, kept as JSON.
//!
//! The handlers' types describe the tools: each family's `#[tool_router]`
//! block builds them with schemars ([`generated`]). Doing that at run time
//! cost a long-running daemon 2-3 MB of resident memory for good: the
//! schema generator's code pages, and the schemas themselves (about 100 KB
//! of JSON, 1.2k small objects once parsed) kept by the router for its
//! whole life, though only `tools/list` reads their output schemas (README,
//! Benchmark, session 9). So the definitions are generated ahead of time into
//! `tools.json`, which a test keeps equal to [`generated`]; `tools/list`
//! parses it on each call (a client lists once per session; the whole
//! answer over HTTP takes about 2 ms), and
//! the router keeps only what dispatch and request validation read: names
//! and input schemas.

use std::collections::HashMap;

use rmcp::handler::server::router::tool::{ToolRoute, ToolRouter};
use rmcp::handler::server::tool::CallToolHandler;
use rmcp::model::Tool;

use super::Maintenant;

/// `tools/list`, in the contract's order (see [`super::TOOL_ORDER`]).
const TOOLS_JSON: &str = include_str!("tools.json");

/// The 18 definitions, parsed from the embedded `tools.json`.
pub fn listing() -> Vec<Tool> {
    serde_json::from_str(TOOLS_JSON).expect("tools.json parses: checked by its test")
}

/// The definitions as the handlers' types describe them (schemars): what
/// `tools.json` must hold. Only the tests call it, so the release binary
/// carries neither the generator nor the schemas' code.
pub fn generated() -> Vec<Tool> {
    let router = Maintenant::endpoint_tools()
        + Maintenant::health_tools()
        + Maintenant::container_tools()
        + Maintenant::resource_tools()
        + Maintenant::certificate_tools()
        + Maintenant::alert_tools()
        + Maintenant::heartbeat_tools()
        + Maintenant::status_tools()
        + Maintenant::update_tools();
    let mut tools = super::order_tools(router.list_all());
    for tool in &mut tools {
        portable(std::sync::Arc::make_mut(&mut tool.input_schema));
        if let Some(out) = tool.output_schema.as_mut() {
            portable(std::sync::Arc::make_mut(out));
        }
    }
    tools
}

/// The `format` values JSON Schema 2020-12 defines. schemars also writes the
/// OpenAPI-style `uint`, `uint32`, `int64`, `double`, ... which validators in
/// strict mode refuse and others warn about on every call (the TypeScript
/// SDK's ajv logs `unknown format "uint32" ignored` dozens of times per tool
/// call). The range they stand for is already there as `minimum`/`maximum`.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Make a schema portable, at any depth: drop every non-standard `format`;
/// spell `type: [T, "null"]` as `anyOf: [{type: T, ...}, {type: null}]`
/// (clients that map schemas onto a single-`type` dialect, such as the
/// OpenAPI subset of Gemini function declarations, refuse the array form;
/// the MCP Inspector's `--strict` warns on it); and give a free-form value
/// (`true`, or a schema with no validation keyword: our `serde_json::Value`
/// fields, which always hold objects) `type: object`.
fn portable(schema: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    if let Some(Value::String(f)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&f.as_str())
    {
        schema.remove("format");
    }
    if let Some(Value::Array(types)) = schema.get("type")
        && types.len() == 2
        && types.contains(&Value::from("null"))
    {
        let t = types
            .iter()
            .find(|t| *t != "null")
            .cloned()
            .unwrap_or_default();
        schema.remove("type");
        // What describes the value stays outside; what constrains it goes
        // into the non-null branch.
        let keep = ["description", "title", "default", "examples", "deprecated"];
        let mut branch = serde_json::Map::new();
        branch.insert("type".into(), t);
        for k in schema.keys().cloned().collect::<Vec<_>>() {
            if !keep.contains(&k.as_str())
                && let Some(v) = schema.remove(&k)
            {
                branch.insert(k, v);
            }
        }
        schema.insert(
            "anyOf".into(),
            Value::Array(vec![
                Value::Object(branch),
                serde_json::json!({"type": "null"}),
            ]),
        );
    }
    for (k, v) in schema.iter_mut() {
        if matches!(k.as_str(), "properties" | "$defs")
            && let Value::Object(m) = v
        {
            m.values_mut().for_each(typed_free_form);
        }
        if k == "items" {
            typed_free_form(v);
        }
        portable_value(v);
    }
}

/// Keywords that make a schema say something about its value.
const VALIDATION_KEYWORDS: &[&str] = &[
    "type",
    "$ref",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "enum",
    "const",
    "properties",
    "items",
];

fn typed_free_form(v: &mut serde_json::Value) {
    use serde_json::Value;
    let free = match v {
        Value::Bool(true) => true,
        Value::Object(m) => !m.keys().any(|k| VALIDATION_KEYWORDS.contains(&k.as_str())),
        _ => false,
    };
    if free {
        let mut m = match std::mem::take(v) {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        m.insert("type".into(), "object".into());
        m.insert("additionalProperties".into(), true.into());
        *v = Value::Object(m);
    }
}

fn portable_value(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => portable(m),
        serde_json::Value::Array(items) => items.iter_mut().for_each(portable_value),
        _ => {}
    }
}

/// The definitions the router keeps: without output schemas.
pub(super) struct Definitions(HashMap<String, Tool>);

impl Definitions {
    fn load() -> Definitions {
        Definitions(
            listing()
                .into_iter()
                .map(|mut t| {
                    t.output_schema = None;
                    (t.name.to_string(), t)
                })
                .collect(),
        )
    }

    /// The route of tool `name` to its handler `call`.
    pub(super) fn route<C, A>(&self, name: &str, call: C) -> ToolRoute<Maintenant>
    where
        C: CallToolHandler<Maintenant, A> + Send + Sync + Clone + 'static,
    {
        let attr = self.0.get(name).cloned().unwrap_or_else(|| {
            panic!("tool {name} is missing from tools.json: regenerate it (see its test)")
        });
        ToolRoute::new(attr, call)
    }
}

/// The router of the 18 tools, each family's routes from its own file.
pub(super) fn router() -> ToolRouter<Maintenant> {
    let defs = Definitions::load();
    let mut router = ToolRouter::new();
    for route in [
        Maintenant::endpoint_routes(&defs).as_slice(),
        &Maintenant::health_routes(&defs),
        &Maintenant::container_routes(&defs),
        &Maintenant::resource_routes(&defs),
        &Maintenant::certificate_routes(&defs),
        &Maintenant::alert_routes(&defs),
        &Maintenant::heartbeat_routes(&defs),
        &Maintenant::status_routes(&defs),
        &Maintenant::update_routes(&defs),
    ]
    .concat()
    {
        router.add_route(route);
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tools.json` is what the handlers' types generate. When a tool or
    /// one of its types changes, regenerate it with
    /// `MAINTENANT_BLESS=1 cargo test --lib tools_json` and commit it.
    #[test]
    fn tools_json_is_what_the_handlers_generate() {
        let generated = generated();
        if std::env::var_os("MAINTENANT_BLESS").is_some() {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/mcp/tools.json");
            let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
            std::fs::write(path, text).unwrap();
            return;
        }
        let want = serde_json::to_value(&generated).unwrap();
        let have: serde_json::Value = serde_json::from_str(TOOLS_JSON).unwrap();
        assert!(
            want == have,
            "src/mcp/tools.json is stale: run `MAINTENANT_BLESS=1 cargo test --lib tools_json` and commit it"
        );
        assert_eq!(generated.len(), 18);
    }

    /// No schema carries a `format` that JSON Schema does not define, a
    /// `type` array or a free-form property, at any depth (clients in strict
    /// mode refuse them, others warn on every call), and unsigned numbers
    /// keep their range as `minimum: 0`.
    #[test]
    fn schemas_use_only_standard_formats() {
        fn walk(v: &serde_json::Value, path: &str, bad: &mut Vec<String>, unsigned: &mut usize) {
            match v {
                serde_json::Value::Object(m) => {
                    if let Some(serde_json::Value::String(f)) = m.get("format")
                        && !STANDARD_FORMATS.contains(&f.as_str())
                    {
                        bad.push(format!("{path}: format {f}"));
                    }
                    if m.get("type").is_some_and(|t| t.is_array()) {
                        bad.push(format!("{path}: type is an array (use anyOf)"));
                    }
                    if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                        for (k, p) in props {
                            let typed = p.as_object().is_some_and(|p| {
                                p.keys().any(|k| VALIDATION_KEYWORDS.contains(&k.as_str()))
                            });
                            if !typed {
                                bad.push(format!("{path}/properties/{k}: free-form schema"));
                            }
                        }
                    }
                    if m.get("minimum") == Some(&serde_json::json!(0)) {
                        *unsigned += 1;
                    }
                    for (k, v) in m {
                        walk(v, &format!("{path}/{k}"), bad, unsigned);
                    }
                }
                serde_json::Value::Array(a) => {
                    for (i, v) in a.iter().enumerate() {
                        walk(v, &format!("{path}/{i}"), bad, unsigned);
                    }
                }
                _ => {}
            }
        }
        let (mut bad, mut unsigned) = (Vec::new(), 0);
        for t in listing() {
            let v = serde_json::to_value(&t).unwrap();
            walk(&v, &t.name, &mut bad, &mut unsigned);
        }
        assert!(bad.is_empty(), "unportable schemas: {bad:#?}");
        assert!(
            unsigned > 50,
            "unsigned numbers keep minimum: 0 ({unsigned})"
        );
    }

    /// Every listed tool has a route, every route a listed tool, and the
    /// router validates requests against the same input schemas.
    #[test]
    fn the_router_routes_every_listed_tool_with_its_input_schema() {
        let router = router();
        let listed = listing();
        let mut routed: Vec<&str> = router.map.keys().map(|k| k.as_ref()).collect();
        routed.sort_unstable();
        let mut names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
        names.sort_unstable();
        assert_eq!(routed, names);
        for t in &listed {
            let kept = router.get(&t.name).unwrap();
            assert_eq!(kept.input_schema, t.input_schema, "{}", t.name);
            assert_eq!(kept.annotations, t.annotations, "{}", t.name);
            assert!(kept.output_schema.is_none());
            assert!(
                t.output_schema.is_some(),
                "{} lists an output schema",
                t.name
            );
        }
    }
}
