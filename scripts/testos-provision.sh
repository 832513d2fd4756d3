#!/bin/sh
# Provisioning script of the test OS (boot-configs/testos): leaves a mark the end-to-end test
# reads back from the produced disk, and shows the environment kiln gives provisioners.
set -eu
echo "provisioning $(hostname) as $(id -un) (build ${PACKER_BUILD_NAME:-?}, builder ${PACKER_BUILDER_TYPE:-?})"
printf 'kiln-provisioned build=%s\n' "${PACKER_BUILD_NAME:-unknown}" > /etc/kiln-provisioned
sync
echo "wrote /etc/kiln-provisioned"
