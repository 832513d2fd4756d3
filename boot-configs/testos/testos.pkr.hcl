# kiln's offline test OS: the ISO built by scripts/make-test-iso.sh stops at an isolinux
# `boot:` prompt like a real installer; the boot command points its installer at the answer
# file kiln serves from http/, and the installed system comes back up with an SSH server.
# The answer file makes it a Vagrant box: user `vagrant` with passwordless sudo and Vagrant's
# insecure key, so `vagrant up` of the box works (tests/guest.rs does it).
#
#   scripts/make-test-iso.sh && kiln build boot-configs/testos

variable "iso_path" {
  type        = string
  description = "The installer ISO (built by scripts/make-test-iso.sh); default: the one in this repository's target/test-iso/."
  default     = ""
}

variable "iso_checksum" {
  type        = string
  description = "Checksum of the ISO, e.g. sha256:<hex>; the test ISO is rebuilt locally, so none by default."
  default     = "none"
}

variable "output_directory" {
  type    = string
  default = "output-testos"
}

variable "version" {
  type        = string
  description = "The box's version in its catalog (output-testos/testos.json)."
  default     = "1.0.0"
}

variable "provision_script" {
  type        = string
  description = "The provisioning script run over SSH once the test OS is installed; default: this repository's scripts/testos-provision.sh."
  default     = ""
}

variable "ssh_timeout" {
  type    = string
  default = "10m"
}

# Paths in options are relative to the directory kiln runs in, as in Packer: files of this
# repository are named from the template's own directory, `path.root`.
locals {
  name             = "testos"
  iso_path         = var.iso_path != "" ? var.iso_path : "${path.root}/../../target/test-iso/kiln-testos.iso"
  provision_script = var.provision_script != "" ? var.provision_script : "${path.root}/../../scripts/testos-provision.sh"
}

source "qemu" "testos" {
  iso_url      = local.iso_path
  iso_checksum = var.iso_checksum

  output_directory = var.output_directory
  vm_name          = "${local.name}.qcow2"
  disk_size        = "1G"
  format           = "qcow2"

  accelerator = "auto"
  memory      = 512
  cpus        = 2
  headless    = true

  http_directory = "${path.root}/../../http"
  # No fixed wait: kiln's <waitFor 'TEXT'> types as soon as the boot prompt is on the screen
  # ("-1s" is Packer's way to turn boot_wait off).
  boot_wait = "-1s"
  boot_command = [
    "<waitFor 'boot:'>install kiln.answer=http://{{ .HTTPIP }}:{{ .HTTPPort }}/testos.cfg<enter>",
  ]

  communicator     = "ssh"
  ssh_username     = "vagrant"
  ssh_password     = "vagrant"
  ssh_timeout      = var.ssh_timeout
  shutdown_command = "echo 'vagrant' | sudo -S shutdown -P now"
}

build {
  sources = ["source.qemu.testos"]

  provisioner "shell" {
    execute_command = "echo 'vagrant' | {{ .Vars }} sudo -S -E sh -eu '{{ .Path }}'"
    script          = local.provision_script
  }

  # The box, and a versioned catalog listing it: `vagrant box add output-testos/testos.json`.
  post-processors {
    post-processor "vagrant" {
      output               = "${var.output_directory}/${local.name}.box"
      vagrantfile_template = "${path.root}/Vagrantfile"
    }
    post-processor "vagrant-catalog" {
      catalog     = "${var.output_directory}/${local.name}.json"
      url         = "file://${abspath(var.output_directory)}/{{ .BoxName }}"
      version     = var.version
      box_name    = "kiln/${local.name}"
      description = "kiln's offline test OS (busybox, dropbear, sudo)"
    }
  }

  post-processor "checksum" {
    checksum_types = ["sha256"]
    output         = "${var.output_directory}/${local.name}.{{ .ChecksumType }}"
  }

  post-processor "manifest" {
    output      = "${var.output_directory}/packer-manifest.json"
    strip_path  = true
    custom_data = { os = "kiln-testos" }
  }
}
