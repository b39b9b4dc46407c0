//! The placement fields of `env create` / `env update` bodies from their flags:
//! `placementConstraints`, `sizing`, `overrides`, `dependsOn`. daemonctl only builds the JSON;
//! the API checks it (a 400 names the field).

use serde_json::{json, Map, Value};

use crate::cli::{ClearArgs, EnvVar, PlacementArgs, SizeRule};

/// The fields the flags give, each only when given; with `clear` (update), `null` for each
/// `--no-…` flag. `stdin` reads `--overrides -`.
pub fn placement_fields(
    p: &PlacementArgs,
    clear: Option<&ClearArgs>,
    stdin: impl FnOnce() -> std::io::Result<String>,
) -> Result<Map<String, Value>, String> {
    let clear = clear.cloned().unwrap_or_default();
    let mut m = Map::new();
    if !p.placement_constraints.is_empty() {
        let list: Vec<Value> = p
            .placement_constraints
            .iter()
            .map(|e| json!({"type": "memberOf", "expression": e}))
            .collect();
        m.insert("placementConstraints".into(), Value::Array(list));
    } else if clear.no_placement_constraints {
        m.insert("placementConstraints".into(), Value::Null);
    }
    if !p.sizing.is_empty() {
        let list: Vec<Value> = p.sizing.iter().map(sizing_rule).collect();
        m.insert("sizing".into(), Value::Array(list));
    } else if clear.no_sizing {
        m.insert("sizing".into(), Value::Null);
    }
    if let Some(doc) = overrides(p.overrides.as_deref(), &p.env, stdin)? {
        m.insert("overrides".into(), doc);
    } else if clear.no_overrides {
        m.insert("overrides".into(), Value::Null);
    }
    if !p.depends_on.is_empty() {
        m.insert("dependsOn".into(), json!(p.depends_on));
    } else if clear.no_depends_on {
        m.insert("dependsOn".into(), Value::Null);
    }
    Ok(m)
}

fn sizing_rule(r: &SizeRule) -> Value {
    let mut rule = json!({ "expression": r.expression });
    if let Some(cpu) = &r.cpu {
        rule["cpu"] = json!(cpu);
    }
    if let Some(memory) = &r.memory {
        rule["memory"] = json!(memory);
    }
    rule
}

/// The `--overrides` document (a file, `-` for stdin, or JSON starting with `{`) with the
/// `--env` entries added; nothing when neither was given.
pub fn overrides(
    source: Option<&str>,
    env: &[EnvVar],
    stdin: impl FnOnce() -> std::io::Result<String>,
) -> Result<Option<Value>, String> {
    let mut doc = match source {
        None if env.is_empty() => return Ok(None),
        None => json!({}),
        Some(src) => {
            let (what, text) = if src == "-" {
                let text = stdin().map_err(|e| format!("--overrides -: reading stdin: {e}"))?;
                ("stdin".to_owned(), text)
            } else if src.trim_start().starts_with('{') {
                ("the inline JSON".to_owned(), src.to_owned())
            } else {
                let text =
                    std::fs::read_to_string(src).map_err(|e| format!("--overrides {src}: {e}"))?;
                (src.to_owned(), text)
            };
            serde_json::from_str(&text)
                .map_err(|e| format!("--overrides: {what} is not JSON: {e}"))?
        }
    };
    for var in env {
        add_env(&mut doc, var)?;
    }
    Ok(Some(doc))
}

/// Sets `var` in its container's `environment` (the container's entry and the list created when
/// missing; a variable of that name already there takes the new value).
fn add_env(doc: &mut Value, var: &EnvVar) -> Result<(), String> {
    let not = |what: &str| format!("--env {}: the --overrides {what}", var.container);
    let top = doc
        .as_object_mut()
        .ok_or_else(|| not("document is not a JSON object"))?;
    let containers = top
        .entry("containerOverrides")
        .and_modify(|v| {
            if v.is_null() {
                *v = json!([]);
            }
        })
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| not("containerOverrides is not a list"))?;
    let at = match containers
        .iter()
        .position(|c| c["name"].as_str() == Some(var.container.as_str()))
    {
        Some(i) => i,
        None => {
            containers.push(json!({ "name": var.container }));
            containers.len() - 1
        }
    };
    let container = containers[at]
        .as_object_mut()
        .ok_or_else(|| not("container entry is not an object"))?;
    let environment = container
        .entry("environment")
        .and_modify(|v| {
            if v.is_null() {
                *v = json!([]);
            }
        })
        .or_insert_with(|| json!([]))
        .as_array_mut()
        .ok_or_else(|| not("container's environment is not a list"))?;
    match environment
        .iter_mut()
        .find(|e| e["name"].as_str() == Some(var.name.as_str()))
    {
        Some(existing) => existing["value"] = json!(var.value),
        None => environment.push(json!({ "name": var.name, "value": var.value })),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{parse_env, parse_size};

    fn no_stdin() -> std::io::Result<String> {
        panic!("stdin read")
    }

    #[test]
    fn nothing_given_is_nothing_sent() {
        let m = placement_fields(&PlacementArgs::default(), None, no_stdin).unwrap();
        assert!(m.is_empty());
        let m = placement_fields(
            &PlacementArgs::default(),
            Some(&ClearArgs::default()),
            no_stdin,
        )
        .unwrap();
        assert!(m.is_empty());
    }

    #[test]
    fn every_flag_becomes_its_field_and_the_clear_flags_null() {
        let p = PlacementArgs {
            placement_constraints: vec!["attribute:a == b".into(), "agentConnected == true".into()],
            sizing: vec![
                parse_size("attribute:ecs.instance-type =~ m5\\..*=1024/2048").unwrap(),
                parse_size("attribute:gpu exists=/4 GB").unwrap(),
            ],
            overrides: None,
            env: vec![parse_env("agent:AZ=${host.availabilityZone}").unwrap()],
            depends_on: vec!["base".into()],
        };
        let m = placement_fields(&p, None, no_stdin).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({
                "placementConstraints": [
                    {"type": "memberOf", "expression": "attribute:a == b"},
                    {"type": "memberOf", "expression": "agentConnected == true"}
                ],
                "sizing": [
                    {"expression": "attribute:ecs.instance-type =~ m5\\..*", "cpu": "1024", "memory": "2048"},
                    {"expression": "attribute:gpu exists", "memory": "4 GB"}
                ],
                "overrides": {"containerOverrides": [
                    {"name": "agent", "environment": [{"name": "AZ", "value": "${host.availabilityZone}"}]}
                ]},
                "dependsOn": ["base"]
            })
        );
        let clear = ClearArgs {
            no_placement_constraints: true,
            no_sizing: true,
            no_overrides: true,
            no_depends_on: true,
        };
        let m = placement_fields(&PlacementArgs::default(), Some(&clear), no_stdin).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"placementConstraints": null, "sizing": null, "overrides": null, "dependsOn": null})
        );
    }

    #[test]
    fn env_entries_add_to_the_overrides_document() {
        let doc = r#"{"cpu": "1 vCPU", "containerOverrides": [
            {"name": "agent", "command": ["run"], "environment": [{"name": "AZ", "value": "old"}, {"name": "KEEP", "value": "1"}]},
            {"name": "side", "environment": null}
        ]}"#;
        let env: Vec<EnvVar> = [
            "agent:AZ=${host.availabilityZone}",
            "side:MODE=a=b:c",
            "new:EMPTY=",
            "agent:AZ=last",
        ]
        .iter()
        .map(|s| parse_env(s).unwrap())
        .collect();
        let out = overrides(Some(doc), &env, no_stdin).unwrap().unwrap();
        assert_eq!(
            out,
            json!({"cpu": "1 vCPU", "containerOverrides": [
                {"name": "agent", "command": ["run"], "environment": [{"name": "AZ", "value": "last"}, {"name": "KEEP", "value": "1"}]},
                {"name": "side", "environment": [{"name": "MODE", "value": "a=b:c"}]},
                {"name": "new", "environment": [{"name": "EMPTY", "value": ""}]}
            ]})
        );
        // Without --env the document goes as it is, whatever it holds (the API judges it).
        assert_eq!(
            overrides(Some("-"), &[], || Ok("[1]".into())).unwrap(),
            Some(json!([1]))
        );
        assert!(overrides(Some("[1]"), &[], no_stdin)
            .unwrap_err()
            .starts_with("--overrides [1]: "));
        let err = overrides(Some("-"), &env[..1], || Ok("[1]".into())).unwrap_err();
        assert_eq!(
            err,
            "--env agent: the --overrides document is not a JSON object"
        );
        let err = overrides(Some("{nope"), &[], no_stdin).unwrap_err();
        assert!(
            err.starts_with("--overrides: the inline JSON is not JSON: "),
            "{err}"
        );
    }

    #[test]
    fn overrides_come_from_a_file() {
        let path =
            std::env::temp_dir().join(format!("daemonctl-overrides-{}.json", std::process::id()));
        std::fs::write(&path, r#"{"memory": "2 GB"}"#).unwrap();
        let got = overrides(path.to_str(), &[], no_stdin);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(got.unwrap(), Some(json!({"memory": "2 GB"})));
        let err = overrides(Some("/nonexistent/o.json"), &[], no_stdin).unwrap_err();
        assert!(
            err.starts_with("--overrides /nonexistent/o.json: "),
            "{err}"
        );
    }
}
