//go:build ftvs_snapbump

package machine

// TEST-ONLY build (-tags ftvs_snapbump): the "machine" section is written
// as version 3 with one extra field, while version 2 is still read. The
// rolling-upgrade test runs it as the "new" build beside a normal one.
const machineVersion = 3

// snapBumpField is the extra field's value.
const snapBumpField = 0x5eb0
