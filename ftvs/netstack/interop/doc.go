// Package interop tests ftvs/netstack against the real Linux TCP stack: the
// tests (root only) run a Stack on a TAP device inside a network namespace
// they create and talk to it with ping, nc, curl and Go's net package.
package interop
