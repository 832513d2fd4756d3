# AlmaLinux 9, x86_64 DVD ISO, UEFI boot (GRUB menu).
os_name    = "almalinux"
os_version = "9"
os_arch    = "x86_64"

# See almalinux-9-x86_64.pkrvars.hcl about point releases.
iso_base_url      = "https://repo.almalinux.org/almalinux/9.7/isos/x86_64"
iso_file          = "AlmaLinux-9.7-x86_64-dvd.iso"
iso_checksum_file = "CHECKSUM"

efi_boot = true

# The default entry is "Test this media & install"; <up> selects "Install", `e` opens its
# editor, two <down>s reach the `linuxefi` line (after setparams), <end> goes to its end.
# <f10> boots the edited entry.
boot_command = [
  "<wait><up>e<wait><down><down><end> inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/el9/ks.cfg<f10>",
]
