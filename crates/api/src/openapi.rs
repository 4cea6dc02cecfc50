//! The OpenAPI 3.1 document, generated with utoipa's builders from the route table.

use crate::routes::ROUTES;
use hangar_core::experiments::Experiments;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, InfoBuilder, OpenApiBuilder, PathsBuilder, Required, ResponseBuilder,
};

fn method(m: &str) -> HttpMethod {
    match m {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The document. `Some(experiments)` leaves out routes of experiments that are off (the
/// served copy); `None` documents every route (the committed copy).
pub fn document(experiments: Option<&Experiments>) -> String {
    let mut items: std::collections::BTreeMap<&str, PathItem> = std::collections::BTreeMap::new();
    for route in ROUTES {
        if let (Some(enabled), Some(exp)) = (experiments, route.experiment)
            && !enabled.enabled(exp)
        {
            continue;
        }
        let mut op = OperationBuilder::new()
            .summary(Some(route.summary))
            .tag(route.tag)
            .operation_id(Some(format!(
                "{} {}",
                route.method.to_lowercase(),
                route.path
            )))
            .response(
                "default",
                ResponseBuilder::new().description("Coder's response envelope on errors"),
            );
        for seg in route.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(
                    ParameterBuilder::new()
                        .name(name)
                        .parameter_in(ParameterIn::Path)
                        .required(Required::True),
                );
            }
        }
        if !route.public {
            op = op.security(SecurityRequirement::new(
                "CoderSessionToken",
                Vec::<String>::new(),
            ));
        }
        // One PathItem per path, holding every method of that path.
        let item = PathItem::new(method(route.method), op.build());
        match items.get_mut(route.path) {
            Some(existing) => existing.merge_operations(item),
            None => {
                items.insert(route.path, item);
            }
        }
    }
    let mut paths = PathsBuilder::new();
    for (path, item) in items {
        paths = paths.path(path, item);
    }
    let components = ComponentsBuilder::new()
        .security_scheme(
            "CoderSessionToken",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("Coder-Session-Token"))),
        )
        .build();
    let doc = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Hangar API")
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components))
        .build();
    let mut text = doc.to_pretty_json().unwrap_or_else(|_| "{}".to_string());
    text.push('\n');
    text
}
