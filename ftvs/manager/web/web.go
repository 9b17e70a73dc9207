// Package web is the manager's page: a live drawing of the pair (the two
// CoServers, their links, NICs and disks, the VS and the witness, coloured by
// health), the recent events and the controls. It is static; everything it
// shows comes from the API with the operator's token, so serving it needs no
// authentication.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// Handler serves the page and its script.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return http.FileServer(http.FS(sub))
}
