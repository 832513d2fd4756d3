# Debian 12 "bookworm", amd64 netinst ISO, UEFI boot (GRUB menu).
os_name    = "debian"
os_version = "12"
os_arch    = "x86_64"

iso_base_url      = "https://cdimage.debian.org/cdimage/archive/latest-oldstable/amd64/iso-cd"
iso_file          = "debian-12.14.0-amd64-netinst.iso"
iso_checksum_file = "SHA256SUMS"

efi_boot = true

# GRUB menu: <down> selects "Install" (text installer, the second entry), `e` opens its editor;
# three <down>s reach the `linux` line (after setparams and `set background_color`). Its end is
# "--- quiet": the nine <bs> remove that, the options go before a new "--- quiet" (what follows
# "---" would be copied into the installed system's kernel command line). <f10> boots.
boot_command = [
  "<wait><down>e<wait><down><down><down><end><bs><bs><bs><bs><bs><bs><bs><bs><bs>",
  "auto=true priority=critical preseed/url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/debian/preseed.cfg netcfg/get_hostname={{ .Name }} --- quiet<f10>",
]
