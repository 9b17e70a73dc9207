//go:build ftvs_snapbump

package machine

// TEST-ONLY build (-tags ftvs_snapbump): the "machine" section is written
// as version 4 with one extra field, while versions 1..3 are still read. The
// rolling-upgrade test runs it as the "new" build beside a normal one.
const machineVersion = 4

// snapBumpField is the extra field's value.
const snapBumpField = 0x5eb0
