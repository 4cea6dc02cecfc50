//! Validation of one rich parameter value against its `coder_parameter` definition (04 §6.3
//! step 3): type, options, regex, min/max and monotonic. The builder collects the messages into
//! 400 `Invalid rich parameter values.` with `detail` `parameter "<name>": <reason>`.
//!
//! A template's `validation_error` replaces the built-in text of a regex or range failure, with
//! `{value}`, `{regex}`, `{min}` and `{max}` filled in, as Coder's provider does.

use hangar_provisioner::model::Parameter;

/// Checks `value` for `def`. `previous` is the value of the workspace's previous build, if
/// any, for the monotonic rule. An empty value of an optional parameter is always accepted.
pub fn validate_value(def: &Parameter, value: &str, previous: Option<&str>) -> Result<(), String> {
    if value.is_empty() && !def.required {
        return Ok(());
    }
    match def.r#type.as_str() {
        "number" => validate_number(def, value, previous),
        "bool" => match value {
            "true" | "false" => check_options(def, &[value]),
            _ => Err(format!("value {value:?} is not a boolean (true or false)")),
        },
        "list(string)" => {
            let items: Vec<String> = serde_json::from_str(value)
                .map_err(|_| format!("value {value:?} is not a JSON list of strings"))?;
            let items: Vec<&str> = items.iter().map(String::as_str).collect();
            check_options(def, &items)
        }
        _ => {
            check_options(def, &[value])?;
            validate_regex(def, value)
        }
    }
}

/// Each of `values` must be the value of one of the definition's options, when it has any.
fn check_options(def: &Parameter, values: &[&str]) -> Result<(), String> {
    if def.options.is_empty() {
        return Ok(());
    }
    match values
        .iter()
        .find(|v| !def.options.iter().any(|o| o.value == **v))
    {
        Some(v) => Err(format!("value {v:?} is not one of the options")),
        None => Ok(()),
    }
}

fn validate_regex(def: &Parameter, value: &str) -> Result<(), String> {
    if def.validation_regex.is_empty() {
        return Ok(());
    }
    let re = regex::Regex::new(&def.validation_regex)
        .map_err(|_| format!("invalid validation regex {:?}", def.validation_regex))?;
    if re.is_match(value) {
        return Ok(());
    }
    Err(custom_error(def, value).unwrap_or_else(|| {
        format!(
            "value {value:?} does not match regex {:?}",
            def.validation_regex
        )
    }))
}

fn validate_number(def: &Parameter, value: &str, previous: Option<&str>) -> Result<(), String> {
    let n: i64 = value
        .trim()
        .parse()
        .map_err(|_| format!("value {value:?} is not a number"))?;
    check_options(def, &[value])?;
    let range = |text: String| custom_error(def, value).unwrap_or(text);
    if let Some(min) = def.validation_min
        && n < i64::from(min)
    {
        return Err(range(format!("value {n} is less than the minimum {min}")));
    }
    if let Some(max) = def.validation_max
        && n > i64::from(max)
    {
        return Err(range(format!("value {n} is more than the maximum {max}")));
    }
    let Some(prev) = previous.and_then(|p| p.trim().parse::<i64>().ok()) else {
        return Ok(());
    };
    match def.validation_monotonic.as_str() {
        "increasing" if n < prev => Err(format!(
            "value {n} must be equal to or greater than the previous value {prev}"
        )),
        "decreasing" if n > prev => Err(format!(
            "value {n} must be equal to or less than the previous value {prev}"
        )),
        _ => Ok(()),
    }
}

/// The template's own message for a failed regex or range check, with `{value}`,
/// `{regex}`, `{min}` and `{max}` replaced by their values.
fn custom_error(def: &Parameter, value: &str) -> Option<String> {
    if def.validation_error.is_empty() {
        return None;
    }
    let opt = |v: Option<i32>| v.map(|n| n.to_string()).unwrap_or_default();
    Some(
        def.validation_error
            .replace("{value}", value)
            .replace("{regex}", &def.validation_regex)
            .replace("{min}", &opt(def.validation_min))
            .replace("{max}", &opt(def.validation_max)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use hangar_provisioner::model::ParameterOption;

    fn def(ty: &str) -> Parameter {
        Parameter {
            name: "p".into(),
            r#type: ty.into(),
            required: true,
            ..Default::default()
        }
    }

    #[test]
    fn types() {
        assert!(validate_value(&def("number"), "42", None).is_ok());
        assert_eq!(
            validate_value(&def("number"), "4x", None).unwrap_err(),
            "value \"4x\" is not a number"
        );
        assert!(validate_value(&def("bool"), "true", None).is_ok());
        assert!(validate_value(&def("bool"), "yes", None).is_err());
        assert!(validate_value(&def("list(string)"), r#"["a","b"]"#, None).is_ok());
        assert!(validate_value(&def("list(string)"), "a,b", None).is_err());
        assert!(validate_value(&def("string"), "", None).is_ok());
        let optional = Parameter {
            required: false,
            ..def("number")
        };
        assert!(validate_value(&optional, "", None).is_ok());
        assert!(validate_value(&def("number"), "", None).is_err());
    }

    #[test]
    fn options_regex_and_custom_error() {
        let mut d = def("list(string)");
        d.options = vec![
            ParameterOption {
                name: "A".into(),
                value: "a".into(),
                ..Default::default()
            },
            ParameterOption {
                name: "B".into(),
                value: "b".into(),
                ..Default::default()
            },
        ];
        assert!(validate_value(&d, r#"["a","b"]"#, None).is_ok());
        assert_eq!(
            validate_value(&d, r#"["a","c"]"#, None).unwrap_err(),
            "value \"c\" is not one of the options"
        );
        let mut s = def("string");
        s.validation_regex = "^[a-z]+$".into();
        assert!(validate_value(&s, "abc", None).is_ok());
        assert_eq!(
            validate_value(&s, "ABC", None).unwrap_err(),
            "value \"ABC\" does not match regex \"^[a-z]+$\""
        );
        s.validation_error = "{value} must match {regex}".into();
        assert_eq!(
            validate_value(&s, "ABC", None).unwrap_err(),
            "ABC must match ^[a-z]+$"
        );
        s.validation_regex = "(".into();
        assert!(validate_value(&s, "x", None).is_err());
    }

    #[test]
    fn range_and_monotonic() {
        let mut d = def("number");
        d.validation_min = Some(1);
        d.validation_max = Some(10);
        assert!(validate_value(&d, "1", None).is_ok());
        assert!(validate_value(&d, "10", None).is_ok());
        assert_eq!(
            validate_value(&d, "0", None).unwrap_err(),
            "value 0 is less than the minimum 1"
        );
        assert_eq!(
            validate_value(&d, "11", None).unwrap_err(),
            "value 11 is more than the maximum 10"
        );
        d.validation_monotonic = "increasing".into();
        assert!(validate_value(&d, "5", Some("5")).is_ok());
        assert!(validate_value(&d, "6", Some("5")).is_ok());
        assert!(validate_value(&d, "4", Some("5")).is_err());
        d.validation_monotonic = "decreasing".into();
        assert!(validate_value(&d, "4", Some("5")).is_ok());
        assert!(validate_value(&d, "6", Some("5")).is_err());
        d.validation_error = "between {min} and {max}".into();
        assert_eq!(
            validate_value(&d, "0", None).unwrap_err(),
            "between 1 and 10"
        );
    }
}
