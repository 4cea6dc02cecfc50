//! Request extractors that answer bad input with the envelope instead of axum's plain text.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use hangar_core::wire::Validation;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// A JSON body. Malformed JSON → 400 `Request body must be valid JSON.` Unknown fields are
/// ignored; request types default every field so missing ones reach field validation.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            ApiError::bad_request("Request body must be valid JSON.").detail(e.body_text())
        })?;
        serde_json::from_slice(&bytes).map(Body).map_err(|e| {
            ApiError::bad_request("Request body must be valid JSON.").detail(e.to_string())
        })
    }
}

/// Raw query parameters, parsed by handlers with field-level errors.
pub struct QueryParams(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        Ok(QueryParams(
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl QueryParams {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    /// A non-negative integer parameter, collecting a validation on failure.
    pub fn u64(&self, k: &str, errors: &mut Vec<Validation>) -> u64 {
        match self.get(k) {
            None => 0,
            Some(v) => v.parse::<u64>().unwrap_or_else(|_| {
                errors.push(Validation::new(
                    k,
                    format!("Query param {k:?} must be a valid non-negative integer ({v:?})"),
                ));
                0
            }),
        }
    }

    pub fn uuid(&self, k: &str, errors: &mut Vec<Validation>) -> Option<uuid::Uuid> {
        let v = self.get(k)?;
        match uuid::Uuid::parse_str(v) {
            Ok(id) => Some(id),
            Err(_) => {
                errors.push(Validation::new(
                    k,
                    format!("Query param {k:?} must be a valid uuid"),
                ));
                None
            }
        }
    }

    pub fn bool(&self, k: &str, errors: &mut Vec<Validation>) -> bool {
        match self.get(k) {
            None => false,
            Some("true") => true,
            Some("false") => false,
            Some(v) => {
                errors.push(Validation::new(
                    k,
                    format!("Query param {k:?} must be a valid boolean ({v:?})"),
                ));
                false
            }
        }
    }
}

/// Fails with 400 `Query parameters have invalid values.` when any were bad.
pub fn check_query(errors: Vec<Validation>) -> Result<(), ApiError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::bad_request("Query parameters have invalid values.").validations(errors))
    }
}
