# The `package` benchmark (scripts/bench/package.sh): a ready disk image packed into a libvirt
# box, the same file for kiln and for Packer. The guest is the test ISO's `typing` kernel and
# initrd, booted directly: it prints its command line and powers off at once, so the time is
# the disk pipeline's (copy, resize, compaction, box). Packer reads it unchanged.
variable "image" {
  type = string
}

variable "kernel" {
  type = string
}

variable "initrd" {
  type = string
}

variable "output_directory" {
  type = string
}

source "qemu" "package" {
  iso_url          = var.image
  iso_checksum     = "none"
  disk_image       = true
  format           = "qcow2"
  disk_size        = "3072M"
  output_directory = var.output_directory
  vm_name          = "package.qcow2"
  accelerator      = "tcg"
  memory           = 256
  headless         = true
  boot_wait        = "-1s"
  communicator     = "none"
  shutdown_timeout = "5m"
  qemuargs = [
    ["-kernel", var.kernel],
    ["-initrd", var.initrd],
    ["-append", "console=ttyS0,115200 quiet kiln.typing bench"],
  ]
}

build {
  sources = ["source.qemu.package"]

  post-processor "vagrant" {
    # Outside the output directory: Packer deletes that directory once the box is made.
    output = "${var.output_directory}.box"
  }
}
