//! A [`KeyDriver`] that types through QMP `input-send-event`.
//!
//! QEMU accepts `input-send-event` only while the VM runs (it answers "VM not running" under
//! `-S`), so the boot command is typed after `cont`.

use serde_json::{Value, json};

use super::{Error, KeyDriver, KeyEvent, Monitor};

/// Sends key events to the VM's keyboard over a QMP connection.
pub struct QmpKeyDriver<'a> {
    qmp: &'a dyn Monitor,
}

impl<'a> QmpKeyDriver<'a> {
    /// A driver typing through `qmp`.
    pub fn new(qmp: &'a dyn Monitor) -> Self {
        QmpKeyDriver { qmp }
    }
}

/// The `input-send-event` arguments for `events`.
fn arguments(events: &[KeyEvent]) -> Value {
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "type": "key",
                "data": { "down": e.down, "key": { "type": "qcode", "data": e.qcode } },
            })
        })
        .collect();
    json!({ "events": events })
}

#[async_trait::async_trait]
impl KeyDriver for QmpKeyDriver<'_> {
    async fn send(&mut self, events: &[KeyEvent]) -> Result<(), Error> {
        self.qmp
            .execute("input-send-event", Some(arguments(events)))
            .await
            .map_err(Error::SendKeys)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::bootcmd::{Pacing, keys, parse, type_actions};
    use crate::builder::qemu::qmp::{Qmp, test_qemu};

    #[test]
    fn arguments_shape() {
        let got = arguments(&[KeyEvent {
            qcode: "ret",
            down: true,
        }]);
        let want = json!({"events": [
            {"type": "key", "data": {"down": true, "key": {"type": "qcode", "data": "ret"}}}
        ]});
        assert_eq!(got, want);
    }

    /// Every qcode in the key tables is one QEMU accepts, and typing works once the VM runs.
    #[tokio::test]
    async fn real_qemu_accepts_every_qcode() {
        let _qemu = test_qemu::spawn(&[]);
        let qmp = Qmp::connect(&_qemu.socket, Duration::from_secs(20))
            .await
            .unwrap();
        let mut driver = QmpKeyDriver::new(&qmp);

        let mut qcodes: Vec<&'static str> = (' '..='~')
            .chain(['\n', '\t'])
            .map(|c| keys::char_key(c).expect("printable ASCII has a key").qcode)
            .chain(keys::NAMED.iter().map(|(_, q)| *q))
            .chain([keys::SHIFT])
            .collect();
        qcodes.sort_unstable();
        qcodes.dedup();
        for qcode in qcodes {
            let events = [
                KeyEvent { qcode, down: true },
                KeyEvent { qcode, down: false },
            ];
            if let Err(e) = driver.send(&events).await {
                panic!("QEMU rejected qcode {qcode:?}: {e:?}");
            }
        }

        let actions = parse("aB!<enter><leftCtrlOn>c<leftCtrlOff>").unwrap();
        type_actions(
            &actions,
            &mut driver,
            None,
            None,
            &CancellationToken::new(),
            Pacing::default(),
        )
        .await
        .unwrap();
        qmp.execute("quit", None).await.unwrap();
    }
}
