//! AWS: credentials, the SigV4 signer and a small client for AWS's Query APIs (EC2, IAM, STS),
//! which take a form-encoded `Action=…` POST and answer in XML.
//!
//! Built on reqwest (already kiln's HTTP client), the signer ([`sigv4`], on hmac/sha2) and
//! roxmltree for the answers, rather than on `aws-sdk-ec2`: the issue-18 note has the build
//! time and binary size figures.

pub mod credentials;
pub mod ec2;
pub mod sigv4;

use std::time::{Duration, SystemTime};

pub use credentials::{AccessConfig, Credentials, Resolved};

/// Why an AWS call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be set up (TLS roots).
    #[error("Cannot set up the HTTP client for AWS")]
    Client(#[source] reqwest::Error),
    /// The endpoint is not a URL.
    #[error("`{endpoint}` is not an endpoint URL")]
    Endpoint { endpoint: String },
    /// No answer (connection refused, TLS, timeout).
    #[error("{action} request to {url} failed")]
    Send {
        action: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// AWS answered with an error.
    #[error("{action} failed: {code}: {message} (HTTP {status})")]
    Api {
        action: String,
        status: u16,
        code: String,
        message: String,
    },
    /// The answer is not the XML expected.
    #[error("{action} answered with unreadable XML from {url}: {message}")]
    Xml {
        action: String,
        url: String,
        message: String,
    },
}

impl Error {
    /// The AWS error code (`InvalidAMIID.NotFound`), for an error AWS answered with.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A client of one Query API (`ec2`, `iam`, …) at one endpoint, signing with one key.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    url: reqwest::Url,
    region: String,
    service: &'static str,
    version: &'static str,
    credentials: Credentials,
    max_retries: u32,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url.as_str())
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// Codes (and HTTP statuses ≥ 500) worth trying again: AWS asks the caller to slow down.
fn retryable(status: u16, code: &str) -> bool {
    status >= 500
        || matches!(
            code,
            "Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "RequestThrottled"
        )
}

impl Client {
    /// A client of `service` (API `version`) at `endpoint` (`None`: AWS's own endpoint for the
    /// region); `insecure` accepts any TLS certificate.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        service: &'static str,
        version: &'static str,
        endpoint: Option<&str>,
        region: &str,
        credentials: Credentials,
        insecure: bool,
        max_retries: u32,
    ) -> Result<Client, Error> {
        let endpoint = match endpoint {
            Some(e) if e.contains("://") => e.to_owned(),
            Some(e) => format!("https://{e}"),
            None => format!("https://{service}.{region}.amazonaws.com/"),
        };
        let url = reqwest::Url::parse(&endpoint)
            .ok()
            .filter(|u| u.host_str().is_some() && matches!(u.scheme(), "http" | "https"))
            .ok_or(Error::Endpoint { endpoint })?;
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(insecure)
            .connect_timeout(Duration::from_secs(30))
            .timeout(Duration::from_secs(120))
            .build()
            .map_err(Error::Client)?;
        Ok(Client {
            http,
            url,
            region: region.to_owned(),
            service,
            version,
            credentials,
            max_retries,
        })
    }

    /// The same client for another region (AWS's endpoint there, unless a custom endpoint was
    /// given: that one serves every region).
    pub fn in_region(&self, region: &str) -> Client {
        let mut c = self.clone();
        if self.url.host_str() == Some(&format!("{}.{}.amazonaws.com", self.service, self.region))
            && let Ok(url) =
                reqwest::Url::parse(&format!("https://{}.{region}.amazonaws.com/", self.service))
        {
            c.url = url;
        }
        c.region = region.to_owned();
        c
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// Calls `action` with `params`; the answer's root element. Throttling and server errors
    /// are tried again (up to `max_retries` times, waiting 1 s, 2 s, 4 s … up to 20 s).
    pub async fn call(&self, action: &str, params: &[(String, String)]) -> Result<Node, Error> {
        let mut attempt = 0;
        loop {
            match self.call_once(action, params).await {
                Err(Error::Api { status, code, .. })
                    if retryable(status, &code) && attempt < self.max_retries =>
                {
                    tracing::debug!(action, code, attempt, "AWS asked to retry");
                }
                Err(Error::Send { source, .. })
                    if (source.is_connect() || source.is_timeout())
                        && attempt < self.max_retries =>
                {
                    tracing::debug!(action, error = %source, attempt, "AWS request failed");
                }
                other => return other,
            }
            // Backing off as AWS asks (not waiting for a state): the delay is the point.
            let delay = Duration::from_secs((1u64 << attempt.min(5)).min(20));
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn call_once(&self, action: &str, params: &[(String, String)]) -> Result<Node, Error> {
        let mut form = vec![
            ("Action".to_owned(), action.to_owned()),
            ("Version".to_owned(), self.version.to_owned()),
        ];
        form.extend(params.iter().cloned());
        let body = form_encode(&form);
        let host = match self.url.port() {
            Some(p) => format!("{}:{p}", self.url.host_str().unwrap_or_default()),
            None => self.url.host_str().unwrap_or_default().to_owned(),
        };
        let content_type = "application/x-www-form-urlencoded; charset=utf-8";
        let headers = [
            ("content-type".to_owned(), content_type.to_owned()),
            ("host".to_owned(), host),
        ];
        let req = sigv4::Request {
            method: "POST",
            path: self.url.path(),
            query: &[],
            headers: &headers,
            body: body.as_bytes(),
        };
        let scope = sigv4::Scope {
            region: &self.region,
            service: self.service,
        };
        let signed = sigv4::sign(&req, &self.credentials, &scope, SystemTime::now());
        let mut builder = self
            .http
            .post(self.url.clone())
            .header("content-type", content_type);
        for (k, v) in signed {
            builder = builder.header(k, v);
        }
        let url = self.url.to_string();
        let send = |source| Error::Send {
            action: action.to_owned(),
            url: url.clone(),
            source,
        };
        let resp = builder.body(body).send().await.map_err(send)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(send)?;
        let root = Node::parse(&text).map_err(|message| Error::Xml {
            action: action.to_owned(),
            url: url.clone(),
            message,
        })?;
        if (200..300).contains(&status) {
            return Ok(root);
        }
        // EC2: <Response><Errors><Error><Code>…; IAM/STS: <ErrorResponse><Error><Code>….
        let error = root
            .find("Error")
            .or_else(|| root.child("Errors").and_then(|e| e.child("Error")));
        let field = |name: &str| error.and_then(|e| e.text_of(name)).unwrap_or_default();
        Err(Error::Api {
            action: action.to_owned(),
            status,
            code: match field("Code") {
                "" => "Unknown".to_owned(),
                c => c.to_owned(),
            },
            message: field("Message").to_owned(),
        })
    }
}

/// `application/x-www-form-urlencoded` as the AWS SDKs write it: RFC 3986 encoding with
/// spaces as `+`. AWS signs the body's bytes whatever the encoding; moto re-encodes the fields
/// it received this way before checking the signature, so `%20` would not match there.
fn form_encode(fields: &[(String, String)]) -> String {
    let enc = |s: &str| sigv4::uri_encode(s).replace("%20", "+");
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// An XML element of an answer: its local name, its text and its child elements.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    pub name: String,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    /// Parses an answer; the root element.
    pub fn parse(xml: &str) -> Result<Node, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        Ok(Node::from(doc.root_element()))
    }

    fn from(el: roxmltree::Node<'_, '_>) -> Node {
        let mut node = Node {
            name: el.tag_name().name().to_owned(),
            ..Node::default()
        };
        for c in el.children() {
            if c.is_element() {
                node.children.push(Node::from(c));
            } else if let Some(t) = c.text() {
                node.text.push_str(t);
            }
        }
        node.text = node.text.trim().to_owned();
        node
    }

    /// The first child element named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The first element named `name` at any depth below this one.
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find_map(|c| {
            if c.name == name {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }

    /// The text of child `name`, when it is there.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The `<item>`s of the list child `name` (`imagesSet`, `tagSet`, …).
    pub fn items<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Node> + 'a {
        self.child(name).into_iter().flat_map(|l| {
            l.children
                .iter()
                .filter(|c| c.name == "item" || c.name == "member")
        })
    }
}

/// Query parameters for a list: `Prefix.1 = a`, `Prefix.2 = b`, … (AWS counts from 1).
pub fn list_params(prefix: &str, values: &[String]) -> Vec<(String, String)> {
    values
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{prefix}.{}", i + 1), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec2_and_iam_errors_are_read() {
        let ec2 = "<?xml version=\"1.0\"?><Response><Errors><Error><Code>InvalidAMIID.NotFound\
                   </Code><Message>The image id '[ami-1]' does not exist</Message></Error>\
                   </Errors><RequestID>x</RequestID></Response>";
        let root = Node::parse(ec2).unwrap();
        let e = root.child("Errors").and_then(|e| e.child("Error")).unwrap();
        assert_eq!(e.text_of("Code"), Some("InvalidAMIID.NotFound"));
        let iam = "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error>\
                   <Type>Sender</Type><Code>NoSuchEntity</Code><Message>m</Message></Error>\
                   </ErrorResponse>";
        let root = Node::parse(iam).unwrap();
        assert_eq!(
            root.find("Error").and_then(|e| e.text_of("Code")),
            Some("NoSuchEntity")
        );
    }

    #[test]
    fn lists_and_items() {
        let xml = "<DescribeImagesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
                   <imagesSet><item><imageId>ami-1</imageId></item>\
                   <item><imageId> ami-2 </imageId></item></imagesSet></DescribeImagesResponse>";
        let root = Node::parse(xml).unwrap();
        let ids: Vec<_> = root
            .items("imagesSet")
            .filter_map(|i| i.text_of("imageId"))
            .collect();
        assert_eq!(ids, ["ami-1", "ami-2"]);
        assert_eq!(
            list_params("Owner", &["self".into(), "099720109477".into()]),
            [
                ("Owner.1".to_owned(), "self".to_owned()),
                ("Owner.2".to_owned(), "099720109477".to_owned())
            ]
        );
        assert!(Node::parse("not xml").is_err());
    }

    #[test]
    fn form_bodies_encode_spaces_as_plus() {
        let fields = [
            ("Action".to_owned(), "CreateSecurityGroup".to_owned()),
            ("GroupDescription".to_owned(), "a b+c/d=é".to_owned()),
        ];
        assert_eq!(
            form_encode(&fields),
            "Action=CreateSecurityGroup&GroupDescription=a+b%2Bc%2Fd%3D%C3%A9"
        );
    }

    #[test]
    fn endpoints() {
        let creds = Credentials {
            access_key_id: "A".into(),
            secret_access_key: crate::types::Secret::new("s"),
            session_token: None,
        };
        let c = Client::new(
            "ec2",
            "2016-11-15",
            None,
            "eu-west-1",
            creds.clone(),
            false,
            0,
        )
        .unwrap();
        assert_eq!(c.url.as_str(), "https://ec2.eu-west-1.amazonaws.com/");
        assert_eq!(
            c.in_region("us-east-2").url.as_str(),
            "https://ec2.us-east-2.amazonaws.com/"
        );
        let local = Client::new(
            "ec2",
            "2016-11-15",
            Some("http://127.0.0.1:5000"),
            "us-east-1",
            creds.clone(),
            false,
            0,
        )
        .unwrap();
        assert_eq!(
            local.in_region("eu-west-1").url.as_str(),
            "http://127.0.0.1:5000/"
        );
        let bare = Client::new(
            "ec2",
            "v",
            Some("ec2.example"),
            "r",
            creds.clone(),
            false,
            0,
        );
        assert_eq!(bare.unwrap().url.as_str(), "https://ec2.example/");
        assert!(matches!(
            Client::new("ec2", "v", Some("ftp://x"), "r", creds, false, 0),
            Err(Error::Endpoint { .. })
        ));
    }
}
