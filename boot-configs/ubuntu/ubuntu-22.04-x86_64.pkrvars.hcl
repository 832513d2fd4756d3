# Ubuntu Server 22.04 LTS "jammy", live-server ISO, BIOS boot (GRUB menu either way).
os_name    = "ubuntu"
os_version = "22.04"
os_arch    = "x86_64"

# releases.ubuntu.com/jammy holds the newest 22.04 point release only; when a new one comes
# out, update iso_file (older ones move to old-releases.ubuntu.com).
iso_base_url      = "https://releases.ubuntu.com/jammy"
iso_file          = "ubuntu-22.04.5-live-server-amd64.iso"
iso_checksum_file = "SHA256SUMS"

efi_boot = false

# `e` edits the first entry ("Try or Install Ubuntu Server"); three <down>s reach its `linux`
# line (after setparams and `set gfxpayload=keep`), <end> goes past "---". GRUB needs the `;`
# escaped (\\; in HCL types \;). <f10> boots the edited entry.
boot_command = [
  "<wait>e<wait><down><down><down><end> autoinstall ds=nocloud-net\\;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ubuntu/<wait><f10>",
]
