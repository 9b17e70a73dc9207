// Package boottest holds the QEMU boot tests of the installer media: direct
// kernel boot, the USB image under OVMF, the ISO under OVMF and SeaBIOS,
// and PXE under BIOS (iPXE script over QEMU's TFTP) and UEFI (OVMF's own
// PXE loading the unified kernel image), with the install config fetched
// from the boot medium, TFTP and HTTP. QEMU runs under TCG only.
package boottest
