// Package e2e is issue 7's end-to-end proof in QEMU (TCG only): two
// machines with the same SMBIOS, four NICs each (two crossover cables as
// QEMU UDP socket pairs, a production segment with a client and a
// management segment with a manager, both bridges in a network namespace
// named fe7-*), and a blank virtio disk each, boot the installer initramfs
// with testdata/e2e/install.yaml embedded. They pair, pass the hardware
// match, lay out their disks and launch the runtime; a client downloads
// from the VS while one QEMU process is killed. With another BIOS version
// on one machine, both installs stop with the report and the disks stay
// blank. Each stage's time is logged; scripts/bench.d/e2e.sh reports them.
package e2e
