# Variables shared by every boot-config, in the Bento manner: each OS directory links this file
# (`variables.pkr.hcl -> ../_common/variables.pkr.hcl`) and build.pkr.hcl, and each
# `<os>-<version>-<arch>[-uefi].pkrvars.hcl` file sets the values of one release:
#
#   kiln build -var-file boot-configs/debian/debian-12-x86_64.pkrvars.hcl boot-configs/debian
#
# The same files work with `packer build` (Packer HCL2, no kiln-only syntax).

# --- which release --------------------------------------------------------------------------

variable "os_name" {
  type        = string
  description = "Distribution name, used in the output and box names (debian, ubuntu, ...)."
}

variable "os_version" {
  type        = string
  description = "Release, e.g. \"12\" or \"24.04\"."
}

variable "os_arch" {
  type    = string
  default = "x86_64"
}

# --- where the ISO comes from -----------------------------------------------------------------
# The pkrvars files name the official download directory, the ISO file and the checksum file in
# it; the template joins them. For offline or on-prem builds, point `iso_mirror` at a directory
# (or URL) holding the same two files, e.g. `-var iso_mirror=/srv/iso/debian-12`. `iso_url` and
# `iso_checksum` override everything (a single ISO path and `sha256:...`, or `none`).

variable "iso_base_url" {
  type        = string
  description = "Official directory URL of the ISO and its checksum file."
}

variable "iso_file" {
  type        = string
  description = "File name of the ISO inside iso_base_url (or iso_mirror)."
}

variable "iso_checksum_file" {
  type        = string
  description = "File name of the checksum list (SHA256SUMS, CHECKSUM, ...) beside the ISO."
}

variable "iso_mirror" {
  type        = string
  default     = ""
  description = "Local directory or mirror URL used instead of iso_base_url (offline, on-prem)."
}

variable "iso_url" {
  type        = string
  default     = ""
  description = "Full ISO path or URL; overrides iso_base_url/iso_mirror and iso_file."
}

variable "iso_checksum" {
  type        = string
  default     = ""
  description = "Checksum (sha256:..., file:..., none); default: file: of the checksum list."
}

# --- how the installer is driven ----------------------------------------------------------------

variable "boot_command" {
  type        = list(string)
  description = "Keys typed at the installer's boot menu (differs between BIOS and UEFI menus)."
}

variable "boot_wait" {
  type    = string
  default = "10s"
}

variable "efi_boot" {
  type        = bool
  default     = false
  description = "Boot the installer with UEFI (OVMF) instead of BIOS (SeaBIOS)."
}

# --- the VM ---------------------------------------------------------------------------------------

variable "accelerator" {
  type        = string
  default     = "auto"
  description = "auto (KVM when usable, else TCG with a warning), kvm (fail without KVM: use in CI), tcg."
}

variable "cpus" {
  type    = number
  default = 2
}

variable "memory" {
  type    = number
  default = 2048
}

variable "disk_size" {
  type        = string
  default     = "64G"
  description = "Virtual size of the disk (sparse: only what the guest writes takes space)."
}

variable "headless" {
  type    = bool
  default = true
}

variable "ssh_timeout" {
  type        = string
  default     = "60m"
  description = "How long the installation may take before SSH answers (KVM: 5-15 min; TCG: much longer)."
}

variable "output_directory" {
  type        = string
  default     = ""
  description = "Where the disk and the box go; default output-<os>-<version>-<arch>[-uefi]."
}

# --- provisioning ----------------------------------------------------------------------------------

variable "vagrant_key_url" {
  type        = string
  default     = "https://raw.githubusercontent.com/hashicorp/vagrant/main/keys/vagrant.pub"
  description = "Where the guest fetches Vagrant's public insecure key; empty: only from kiln's HTTP server (http/vagrant.pub)."
}

locals {
  build_name = "${var.os_name}-${var.os_version}-${var.os_arch}${var.efi_boot ? "-uefi" : ""}"
  # The disk's file name in the output directory, and `{{ .Name }}` in boot commands (Packer's
  # meaning): Debian's boot command uses it as the host name, so no `_` or `.` in it there.
  vm_name          = "${var.os_name}-${var.os_version}"
  iso_dir          = var.iso_mirror != "" ? var.iso_mirror : var.iso_base_url
  iso_url          = var.iso_url != "" ? var.iso_url : "${local.iso_dir}/${var.iso_file}"
  iso_checksum     = var.iso_checksum != "" ? var.iso_checksum : "file:${local.iso_dir}/${var.iso_checksum_file}"
  output_directory = var.output_directory != "" ? var.output_directory : "output-${local.build_name}"
  http_directory   = "${path.root}/../../http"
  scripts          = "${path.root}/../../scripts/guest"

  # Every provisioning script runs as root through sudo (the `vagrant` password answers its
  # prompt until sudoers.sh makes it passwordless), under `sh -eux`: stop at the first error,
  # on an unset variable, and show each command. `env` passes the variables through sudo,
  # whose env_reset would drop them.
  execute_command = "echo 'vagrant' | sudo -S env {{ .Vars }} sh -eux '{{ .Path }}'"
}
