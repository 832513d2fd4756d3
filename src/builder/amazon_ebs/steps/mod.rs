//! The amazon-ebs builder's own steps (the shared `Provision` runs between `connect` and
//! `stop_instance`), one per file, and the one way they wait for an EC2 state.

mod connect;
mod copy_images;
mod create_image;
mod deregister_existing;
mod key_pair;
mod pre_validate;
mod run_instance;
mod security_group;
mod share_and_tag;
mod source_ami;
mod stop_instance;

pub use connect::Connect;
pub use copy_images::CopyImages;
pub use create_image::CreateImage;
pub use deregister_existing::DeregisterExisting;
pub use key_pair::KeyPair;
pub use pre_validate::PreValidate;
pub use run_instance::RunInstance;
pub use security_group::SecurityGroup;
pub use share_and_tag::ShareAndTag;
pub use source_ami::SourceAmi;
pub use stop_instance::StopInstance;

use std::future::Future;

use super::{Polling, StateError};
use crate::aws::{self, Client, ec2};
use crate::wait::{self, Attempt};

/// Asks `check` every `polling.delay`, at most `polling.max_attempts` times, until it returns
/// a value; `NotYet` means ask again, any other error stops the wait.
pub(super) async fn poll<T, F, Fut>(
    polling: Polling,
    mut check: F,
) -> Result<T, wait::Error<StateError>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StateError>>,
{
    let timeout = polling.delay * polling.max_attempts.max(1);
    // The deadline is after the last attempt, not at it.
    let timeout = timeout + polling.delay / 2;
    wait::until_ok(timeout, polling.delay, || {
        let attempt = check();
        async move {
            match attempt.await {
                Ok(v) => Attempt::Done(v),
                Err(e @ StateError::NotYet { .. }) => Attempt::Retry(e),
                Err(e @ StateError::Aws(_)) if is_transient(&e) => Attempt::Retry(e),
                Err(e) => Attempt::Fatal(e),
            }
        }
    })
    .await
}

/// Errors a wait sees while EC2 catches up with its own answers (a new id not visible yet).
fn is_transient(e: &StateError) -> bool {
    matches!(e, StateError::Aws(a) if a.code().is_some_and(|c| c.ends_with(".NotFound")))
}

/// Waits until instance `id` is in `state`; the instance as then described. Reaching
/// `terminated` (or, waiting for that, anything but it) is an error.
pub(super) async fn instance_state(
    client: &Client,
    polling: Polling,
    id: &str,
    state: &'static str,
) -> Result<ec2::Instance, wait::Error<StateError>> {
    poll(polling, || async move {
        let found = ec2::describe_instances(client, &[id.to_owned()]).await?;
        let instance = found.into_iter().next().ok_or(StateError::NotYet {
            state: "not visible yet".into(),
        })?;
        if instance.state == state {
            Ok(instance)
        } else if instance.state == "terminated" {
            Err(StateError::Gone {
                state: instance.state,
            })
        } else {
            Err(StateError::NotYet {
                state: instance.state,
            })
        }
    })
    .await
}

/// Waits until AMI `id` is `available`; the image as then described.
pub(super) async fn image_available(
    client: &Client,
    polling: Polling,
    id: &str,
) -> Result<ec2::Image, super::Error> {
    let waited = poll(polling, || async move {
        let found =
            ec2::describe_images(client, &ec2::AmiFilter::default(), &[id.to_owned()]).await?;
        let image = found.into_iter().next().ok_or(StateError::NotYet {
            state: "not visible yet".into(),
        })?;
        match image.state.as_str() {
            "available" => Ok(image),
            "pending" => Err(StateError::NotYet { state: image.state }),
            _ => Err(StateError::Gone { state: image.state }),
        }
    })
    .await;
    waited.map_err(|source| super::Error::Wait {
        id: id.to_owned(),
        state: "available",
        source,
    })
}

/// Deregisters AMI `id` and deletes `snapshots`, logging (not failing on) what goes wrong: a
/// cleanup does all it can.
pub(super) async fn remove_image(
    client: &Client,
    id: &str,
    snapshots: &[String],
) -> Vec<aws::Error> {
    let mut errors = Vec::new();
    if let Err(e) = ec2::deregister_image(client, id).await {
        errors.push(e);
    }
    for s in snapshots {
        if let Err(e) = ec2::delete_snapshot(client, s).await {
            errors.push(e);
        }
    }
    errors
}
