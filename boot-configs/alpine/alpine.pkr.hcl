# Alpine Linux, installed from the "virt" ISO (kernel for virtual machines) by setup-alpine with
# an answer file: the boot command logs into the live system as root, starts DHCP and runs
# http/alpine/install.sh from kiln's HTTP server, which answers setup-alpine with
# http/alpine/answers, adds the vagrant user and sudo, and installs to the disk with setup-disk.
# The live system boots by itself under BIOS (syslinux) and UEFI (GRUB), so both use the same
# keys; efi_boot picks the firmware.
#
#   kiln build -var-file boot-configs/alpine/alpine-3.21-x86_64.pkrvars.hcl boot-configs/alpine
#
# The shared variables (ISO location and mirror, VM size, timeouts) are in variables.pkr.hcl.

source "qemu" "alpine" {
  iso_url      = local.iso_url
  iso_checksum = local.iso_checksum

  output_directory   = local.output_directory
  vm_name            = local.vm_name
  disk_size          = var.disk_size
  format             = "qcow2"
  disk_interface     = "virtio"
  disk_discard       = "unmap"
  disk_detect_zeroes = "unmap"
  disk_compression   = true

  accelerator  = var.accelerator
  machine_type = "q35"
  cpus         = var.cpus
  memory       = var.memory
  net_device   = "virtio-net"
  efi_boot     = var.efi_boot
  headless     = var.headless

  http_directory = local.http_directory
  boot_wait      = var.boot_wait
  boot_command   = var.boot_command

  communicator     = "ssh"
  ssh_username     = "vagrant"
  ssh_password     = "vagrant"
  ssh_timeout      = var.ssh_timeout
  shutdown_command = "echo 'vagrant' | sudo -S poweroff"
}

build {
  sources = ["source.qemu.alpine"]

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = ["VAGRANT_KEY_URL=${var.vagrant_key_url}"]
    scripts = [
      "${local.scripts}/sudoers.sh",
      "${local.scripts}/vagrant.sh",
      "${local.scripts}/qemu-guest-agent.sh",
      "${local.scripts}/cleanup.sh",
      "${local.scripts}/minimize.sh",
    ]
  }

  post-processor "vagrant" {
    output            = "${local.output_directory}/${local.build_name}.libvirt.box"
    compression_level = 6
  }
}
