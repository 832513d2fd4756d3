//! `provisioner "ansible"` against a real QEMU guest (issue 17): the offline test OS, which has
//! no Python, reached with the `raw` module only. Fails loudly when QEMU, the test ISO or
//! Ansible is missing.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;

/// `kiln build` of the test OS with an `ansible` provisioner: Ansible logs in as root with the
/// build's password at the forwarded port kiln uses, runs `raw` tasks that see the build's
/// `packer_*` variables (the HTTP server's address too), and the next provisioner reads the
/// mark back over kiln's own connection.
#[test]
fn ansible_raw_provisions_the_test_os() {
    require_qemu();
    require("ansible-playbook", "ansible-core");
    require("sshpass", "sshpass");
    let iso = test_iso();
    let work = tempfile::tempdir().unwrap();
    let outdir = work.path().join("output-ansible");
    let out = kiln()
        .current_dir(work.path())
        .arg("build")
        .arg(format!("-var=iso_path={}", iso.display()))
        .arg(format!("-var=output_directory={}", outdir.display()))
        .arg(repo_root().join("tests/fixtures/e2e/ansible.pkr.hcl"))
        .output()
        .unwrap();
    assert_ok(&out, "kiln build failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mark = "ansible ansible qemu 10.0.2.2:";
    assert!(
        stdout.contains(&format!("guest says: {mark}")),
        "the raw tasks did not run\n{}",
        describe(&out)
    );
    assert!(
        stdout.contains(&format!("read back: {mark}")),
        "the mark is not on the guest\n{}",
        describe(&out)
    );
    assert!(outdir.join("ansible.qcow2").is_file());
}
