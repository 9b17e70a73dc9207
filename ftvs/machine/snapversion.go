//go:build !ftvs_snapbump

package machine

// machineVersion is the version of the "machine" snapshot section.
const machineVersion = 3

const snapBumpField = 0
