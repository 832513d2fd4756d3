# Fedora Server 43, x86_64 netinst ISO, UEFI boot (GRUB menu either way).
os_name    = "fedora"
os_version = "43"
os_arch    = "x86_64"

# The netinst ISO installs from Fedora's mirrors (see http/fedora/ks.cfg). Releases move to
# https://archives.fedoraproject.org/pub/archive/fedora/linux/releases/ after their end of life.
iso_base_url      = "https://download.fedoraproject.org/pub/fedora/linux/releases/43/Server/x86_64/iso"
iso_file          = "Fedora-Server-netinst-x86_64-43-1.6.iso"
iso_checksum_file = "Fedora-Server-43-1.6-x86_64-CHECKSUM"

efi_boot = true

# The default entry is "Test this media & install"; <up> selects "Install Fedora", `e` opens
# its editor, two <down>s reach the `linux` line, <end> goes to its end. <f10> boots.
boot_command = [
  "<wait><up>e<wait><down><down><end> inst.text inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/fedora/ks.cfg<f10>",
]
