# Alpine Linux 3.21, x86_64 "virt" ISO, BIOS boot (syslinux).
os_name    = "alpine"
os_version = "3.21"
os_arch    = "x86_64"

# Alpine keeps every release of a branch in its releases directory; the checksum file is
# per ISO.
iso_base_url      = "https://dl-cdn.alpinelinux.org/alpine/v3.21/releases/x86_64"
iso_file          = "alpine-virt-3.21.3-x86_64.iso"
iso_checksum_file = "alpine-virt-3.21.3-x86_64.iso.sha256"

efi_boot = false

# The live system boots by itself to a login prompt: root has no password there. DHCP on
# eth0, then http/alpine/install.sh does the rest and reboots into the installed system.
boot_wait = "30s"
boot_command = [
  "root<enter><wait5>",
  "ifconfig eth0 up && udhcpc -i eth0 -q && wget -q -O /tmp/install.sh http://{{ .HTTPIP }}:{{ .HTTPPort }}/alpine/install.sh && KILN_HTTP=http://{{ .HTTPIP }}:{{ .HTTPPort }}/alpine sh /tmp/install.sh<enter>",
]
