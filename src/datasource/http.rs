//! `data "http" "NAME" { url = … }`: one HTTP request, made while the template loads. Outputs,
//! as Packer names them: `url`, `body`, and `request_headers` (the response's headers, a
//! header given several times joined with `, `).
//!
//! As in Packer, an answer outside 2xx fails; a body that is not text (`text/*`,
//! `application/json`) is kept but deserves a warning.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use hcl::Value;

use super::{DataSource, Error, Outputs};

/// The longest a request may take (Packer has no option for it; a template load should not
/// hang on a server that never answers).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The methods Packer allows.
pub const METHODS: &[&str] = &["HEAD", "GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// An `http` data source.
#[derive(Debug, Clone)]
pub struct Http {
    pub url: String,
    /// One of [`METHODS`] (default `GET`).
    pub method: String,
    pub request_headers: BTreeMap<String, String>,
    pub request_body: Option<String>,
}

#[async_trait]
impl DataSource for Http {
    async fn read(&self) -> Result<Outputs, Error> {
        let url = self.url.clone();
        match tokio::time::timeout(TIMEOUT, self.request()).await {
            Ok(r) => r,
            Err(_elapsed) => Err(Error::Timeout {
                url,
                limit: TIMEOUT,
            }),
        }
    }
}

impl Http {
    async fn request(&self) -> Result<Outputs, Error> {
        let failed = |source| Error::Request {
            url: self.url.clone(),
            source,
        };
        let method =
            reqwest::Method::from_bytes(self.method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let mut req = reqwest::Client::new().request(method, &self.url);
        for (k, v) in &self.request_headers {
            req = req.header(k, v);
        }
        if let Some(body) = &self.request_body {
            req = req.body(body.clone());
        }
        let resp = req.send().await.map_err(failed)?;
        let status = resp.status();
        if !status.is_success() {
            return Err(Error::Status {
                url: self.url.clone(),
                status: status.as_u16(),
            });
        }
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in resp.headers() {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            headers
                .entry(canonical(k.as_str()))
                .and_modify(|all| {
                    all.push_str(", ");
                    all.push_str(&v);
                })
                .or_insert(v);
        }
        let content_type = headers.get("Content-Type").cloned().unwrap_or_default();
        let mut warnings = Vec::new();
        if !is_text(&content_type) {
            warnings.push(format!(
                "the answer from `{}` has Content-Type `{content_type}`, which is not text: \
                 its body may not be usable as a string",
                self.url
            ));
        }
        let body = resp.bytes().await.map_err(failed)?;
        let value = Value::Object(hcl::Map::from_iter([
            ("url".to_owned(), Value::from(self.url.clone())),
            (
                "body".to_owned(),
                Value::from(String::from_utf8_lossy(&body).into_owned()),
            ),
            (
                "request_headers".to_owned(),
                Value::Object(headers.into_iter().map(|(k, v)| (k, v.into())).collect()),
            ),
        ]));
        Ok(Outputs { value, warnings })
    }
}

/// A header name as Go writes it (`content-type` → `Content-Type`), which Packer's outputs use.
fn canonical(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Whether a Content-Type is text Packer accepts without a word: `text/*` or JSON, in UTF-8 or
/// US-ASCII.
fn is_text(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let textual = (media.starts_with("text/") && media.len() > 5)
        || media == "application/json"
        || media.starts_with("application/samlmetadata+xml");
    let charset_ok = parts.all(|p| match p.trim().split_once('=') {
        Some((k, v)) if k.trim().eq_ignore_ascii_case("charset") => {
            let v = v.trim().trim_matches('"').to_ascii_lowercase();
            v == "utf-8" || v == "us-ascii"
        }
        _ => true,
    });
    textual && charset_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical("content-type"), "Content-Type");
        assert_eq!(canonical("x-request-id"), "X-Request-Id");
        assert_eq!(canonical("etag"), "Etag");
    }

    #[test]
    fn text_content_types() {
        let table = [
            ("text/plain", true),
            ("text/plain; charset=utf-8", true),
            ("application/json", true),
            ("text/html; charset=ISO-8859-1", false),
            ("application/octet-stream", false),
            ("", false),
        ];
        for (ct, want) in table {
            assert_eq!(is_text(ct), want, "{ct}");
        }
    }
}
