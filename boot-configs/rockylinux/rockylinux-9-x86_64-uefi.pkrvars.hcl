# Rocky Linux 9, x86_64 DVD ISO, UEFI boot (GRUB menu).
os_name    = "rockylinux"
os_version = "9"
os_arch    = "x86_64"

# See rockylinux-9-x86_64.pkrvars.hcl about point releases.
iso_base_url      = "https://download.rockylinux.org/pub/rocky/9.7/isos/x86_64"
iso_file          = "Rocky-9.7-x86_64-dvd.iso"
iso_checksum_file = "CHECKSUM"

efi_boot = true

# The default entry is "Test this media & install"; <up> selects "Install", `e` opens its
# editor, two <down>s reach the `linuxefi` line (after setparams), <end> goes to its end.
# <f10> boots the edited entry.
boot_command = [
  "<wait><up>e<wait><down><down><end> inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/el9/ks.cfg<f10>",
]
