# Debian 12 "bookworm", amd64 netinst ISO, BIOS boot (isolinux menu).
os_name    = "debian"
os_version = "12"
os_arch    = "x86_64"

# Debian moves point releases out of `current/` when a new one comes out; the archive's
# latest-oldstable directory always holds the newest bookworm point release. When it changes,
# update iso_file (the checksum file name stays).
iso_base_url      = "https://cdimage.debian.org/cdimage/archive/latest-oldstable/amd64/iso-cd"
iso_file          = "debian-12.14.0-amd64-netinst.iso"
iso_checksum_file = "SHA256SUMS"

efi_boot = false

# <esc> leaves the graphical menu for the `boot:` prompt; `auto` is d-i's automated-install
# label (auto=true priority=critical: the preseed is fetched once the network is up).
boot_command = [
  "<wait><esc><wait>auto preseed/url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/debian/preseed.cfg netcfg/get_hostname={{ .Name }}<enter>",
]
