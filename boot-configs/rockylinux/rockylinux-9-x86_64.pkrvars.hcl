# Rocky Linux 9, x86_64 DVD ISO, BIOS boot (isolinux menu).
os_name    = "rockylinux"
os_version = "9"
os_arch    = "x86_64"

# The DVD carries every package the kickstart installs: no mirror needed during the install.
# When the next 9.x point release comes out, this one moves to https://dl.rockylinux.org/vault/rocky/9.7/isos/x86_64:
# update iso_file and iso_base_url (or set iso_mirror).
iso_base_url      = "https://download.rockylinux.org/pub/rocky/9.7/isos/x86_64"
iso_file          = "Rocky-9.7-x86_64-dvd.iso"
iso_checksum_file = "CHECKSUM"

efi_boot = false

# The default entry is "Test this media & install"; <up> selects "Install", <tab> opens its
# kernel options for editing; the kickstart options are added at their end.
boot_command = [
  "<wait><up><wait><tab> inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/el9/ks.cfg<enter>",
]
