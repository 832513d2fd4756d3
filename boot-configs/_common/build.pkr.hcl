# The build every boot-config shares, in the Bento manner: each OS directory links this file
# and variables.pkr.hcl from here, and its `<os>-<version>-<arch>[-uefi].pkrvars.hcl` files set
# what differs between releases: the ISO, the firmware, and the boot command, which points the
# installer at its answer file in http/<os>/. The install itself is the distribution's own
# installer answering from that file; then the shared scripts in scripts/guest/ prepare the
# Vagrant box (sudoers, insecure key, qemu-guest-agent, networking, cleanup, minimize).
#
#   kiln build -var-file boot-configs/debian/debian-12-x86_64.pkrvars.hcl boot-configs/debian
#
# Every option here is Packer's: `packer build` takes the same files.

source "qemu" "vm" {
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
  sources = ["source.qemu.vm"]

  provisioner "shell" {
    execute_command  = local.execute_command
    environment_vars = ["VAGRANT_KEY_URL=${var.vagrant_key_url}"]
    scripts = [
      "${local.scripts}/sudoers.sh",
      "${local.scripts}/vagrant.sh",
      "${local.scripts}/qemu-guest-agent.sh",
      "${local.scripts}/networking.sh",
      "${local.scripts}/cleanup.sh",
      "${local.scripts}/minimize.sh",
    ]
  }

  post-processor "vagrant" {
    output            = "${local.output_directory}/${local.build_name}.libvirt.box"
    compression_level = 6
  }
}
