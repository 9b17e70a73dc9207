// Package ftvsbin builds the ftvs binary once per test process, for tests
// that run it the way an operator does (in a namespace, on a terminal).
package ftvsbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
	out  []byte
)

// Path returns the built binary; the test fails if it does not build.
func Path(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		dir, e := os.MkdirTemp("", "fi6-ftvs-bin-")
		if e != nil {
			err = e
			return
		}
		path = filepath.Join(dir, "ftvs")
		cmd := exec.Command("go", "build", "-o", path, "github.com/ftvs/ftvs/cmd/ftvs")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err = cmd.CombinedOutput()
	})
	if err != nil {
		t.Fatalf("build ftvs: %v\n%s", err, out)
	}
	return path
}

// Cleanup removes the built binary; call it from TestMain after m.Run.
func Cleanup() {
	if path != "" {
		os.RemoveAll(filepath.Dir(path))
	}
}
