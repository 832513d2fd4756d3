//! Step: commit the container as an image with `author`, `message` and `changes`. As Packer
//! does, the image keeps the base image's CMD and ENTRYPOINT (the run command replaced the
//! entrypoint with a shell) unless `changes` sets them.
//!
//! Uses: `engine`, `container`, `config.image`, `config.output`. Produces: `image_id`.
//! Cleanup: none (the image is the artifact).

use async_trait::async_trait;

use crate::builder::docker::{DockerContext, Error, Output};
use crate::engine::{Input, argv};
use crate::step::Step;

pub struct Commit;

/// `changes` plus `CMD` and `ENTRYPOINT` from the base image's configuration (`[""]` when it
/// has none), for each that `changes` does not set.
fn with_defaults(changes: &[String], base: &serde_json::Value) -> Vec<String> {
    let sets = |instruction: &str| {
        changes.iter().any(|c| {
            c.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case(instruction))
        })
    };
    let mut out = changes.to_vec();
    for (instruction, key) in [("CMD", "Cmd"), ("ENTRYPOINT", "Entrypoint")] {
        if sets(instruction) {
            continue;
        }
        let value = match base.get(key) {
            Some(v @ serde_json::Value::Array(items)) if !items.is_empty() => v.to_string(),
            Some(serde_json::Value::String(s)) if !s.is_empty() => {
                serde_json::Value::from(vec![s.clone()]).to_string()
            }
            _ => r#"[""]"#.to_owned(),
        };
        out.push(format!("{instruction} {value}"));
    }
    out
}

#[async_trait]
impl Step<DockerContext, Error> for Commit {
    fn name(&self) -> &'static str {
        "commit"
    }

    async fn run(&mut self, ctx: &mut DockerContext) -> Result<(), Error> {
        let (
            Some(engine),
            Some(container),
            Output::Commit {
                author,
                message,
                changes,
            },
        ) = (&ctx.engine, &ctx.container, &ctx.config.output)
        else {
            return Ok(());
        };
        let image = &ctx.config.image;
        let config_err = |source: Box<dyn std::error::Error + Send + Sync>| Error::ImageConfig {
            image: image.clone(),
            source,
        };
        let text = engine
            .output(argv::image_config(image), Input::Nothing)
            .await
            .map_err(|e| config_err(Box::new(e)))?;
        let base: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| config_err(Box::new(e)))?;
        let changes = with_defaults(changes, &base);
        ctx.core.ui.say("Committing the container");
        let args = argv::commit(
            engine.flavor(),
            container,
            author.as_deref(),
            &changes,
            message.as_deref(),
        );
        let out = engine
            .output(args, Input::Nothing)
            .await
            .map_err(Error::Commit)?;
        let id = out.lines().last().unwrap_or_default().trim().to_owned();
        ctx.core.ui.message(format!("Image ID: {id}"));
        ctx.image_id = Some(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_cmd_and_entrypoint_are_kept_unless_changes_set_them() {
        let base: serde_json::Value =
            serde_json::from_str(r#"{"Cmd":["/bin/sh","-c","x"],"Entrypoint":null}"#)
                .expect("json");
        let own = |c: &[&str]| c.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let cases: [(&str, Vec<String>, serde_json::Value, &[&str]); 4] = [
            (
                "both from the image, none as [\"\"]",
                own(&["ENV A=b"]),
                base.clone(),
                &[
                    "ENV A=b",
                    r#"CMD ["/bin/sh","-c","x"]"#,
                    r#"ENTRYPOINT [""]"#,
                ],
            ),
            (
                "the template's CMD wins, in any case",
                own(&["cmd [\"app\"]"]),
                base.clone(),
                &[r#"cmd ["app"]"#, r#"ENTRYPOINT [""]"#],
            ),
            (
                "both set: nothing added",
                own(&["ENTRYPOINT /x", "CMD y"]),
                base,
                &["ENTRYPOINT /x", "CMD y"],
            ),
            (
                "podman's string entrypoint, an image without Cmd",
                Vec::new(),
                serde_json::json!({"Entrypoint": "/bin/sh"}),
                &[r#"CMD [""]"#, r#"ENTRYPOINT ["/bin/sh"]"#],
            ),
        ];
        for (reason, changes, base, want) in cases {
            assert_eq!(with_defaults(&changes, &base), want, "{reason}");
        }
    }
}
